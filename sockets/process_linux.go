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

// Holds reports whether process pid has open any of the sockets inodes
// (Socket.Inode). With a pidfd already open on pid and its start time
// checked, it confirms that the process about to be signalled is a holder
// now, whatever happened between a List and the signal.
func (t *Table) Holds(pid int, inodes []uint64) (bool, error) {
	root := newLister(t).(linuxLister).root
	socks, err := socketInodes(root, pid)
	if err != nil {
		return false, err
	}
	for _, ino := range inodes {
		if socks[ino] {
			return true, nil
		}
	}
	return false, nil
}
