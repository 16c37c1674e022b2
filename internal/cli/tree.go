package cli

import "github.com/spf13/cobra"

// CommandTree returns portkit's command tree, for tools that document it
// (the man page generator); running it is Main's job.
func CommandTree() *cobra.Command { return newRoot(&env{Streams: OSStreams()}) }
