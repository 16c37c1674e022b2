//go:build !unix

package scan

// maxSockets bounds the connects in flight where there is no open-file
// limit to read (Windows): its default dynamic port range is 16384 ports,
// and a scan should leave most of them to the rest of the system.
const maxSockets = 8192

func fileLimit(reserve int) (n int, why string, err error) {
	return maxSockets - reserve, "socket bound 8192", nil
}
