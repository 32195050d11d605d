package nsthread_test

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nsthread"
)

// heldNetns makes a network namespace on a thread that is then discarded
// and returns a descriptor holding it, closed when b ends.
func heldNetns(b *testing.B) int {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root (unshare net)")
	}
	fdc := make(chan int, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies in its netns
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		fdc <- fd
	}()
	select {
	case err := <-errc:
		b.Fatal(err)
	case fd := <-fdc:
		b.Cleanup(func() {
			if err := unix.Close(fd); err != nil {
				b.Error(err)
			}
		})
		return fd
	}
	return -1
}

// BenchmarkDo is the pinned-thread hop alone: a new locked goroutine whose
// thread is destroyed afterwards.
func BenchmarkDo(b *testing.B) {
	for b.Loop() {
		if err := nsthread.Do(nil, func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDoSetnsNet is the hop every builtin acting in a network
// namespace pays: a new thread, setns into a netns held by descriptor.
func BenchmarkDoSetnsNet(b *testing.B) {
	fd := heldNetns(b)
	joins := []nsthread.Join{{Fd: fd, Type: unix.CLONE_NEWNET, Name: "net"}}
	for b.Loop() {
		if err := nsthread.Do(joins, func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// openThreadNet opens the calling thread's network namespace into *fd, as
// unshare("net") holds a new one.
func openThreadNet(fd *int) error {
	var err error
	*fd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	return err
}

// BenchmarkUnshareNet creates a network namespace per iteration and holds
// it by descriptor just long enough to close it, as unshare("net") does.
func BenchmarkUnshareNet(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (unshare net)")
	}
	for b.Loop() {
		var fd int
		err := nsthread.Unshare(nil, unix.CLONE_NEWNET, func() error { return openThreadNet(&fd) })
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Close(fd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetRunnerUnshareNet is BenchmarkUnshareNet through NetRunner
// (what netns() and unshare("net") use): the calling thread, no thread
// is created or destroyed per namespace.
func BenchmarkNetRunnerUnshareNet(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (unshare net)")
	}
	w := nsthread.NewNetRunner()
	defer w.Close()
	for b.Loop() {
		var fd int
		err := w.Do(nil, func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return err
			}
			return openThreadNet(&fd)
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Close(fd); err != nil {
			b.Fatal(err)
		}
	}
}
