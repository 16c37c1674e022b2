//go:build race

package scan

// raceEnabled: the race detector slows the big tests down tenfold.
const raceEnabled = true
