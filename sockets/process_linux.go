package sockets

// Process reads what Process says of pid now. A caller that holds a Process
// from an earlier List compares StartTicks to tell the same process from a
// new one that reuses its PID. An exited process gives an error for which
// errors.Is(err, fs.ErrNotExist) holds.
func (t *Table) Process(pid int) (Process, error) {
	root := newLister(t).(linuxLister).root
	var f fileReader
	boot, err := bootTime(&f, root+"/stat")
	if err != nil {
		return Process{}, err
	}
	p, err := readProcess(&f, root, pid, boot)
	if err != nil {
		return Process{}, err
	}
	p.User = userName(p.UID)
	return p, nil
}
