package interp

import "go.starlark.net/starlark"

// Call calls fn with args on a new thread of the run whose name (and file,
// for positions) is name, tracked like the script's own thread: an
// interruption of the run (a signal, Interrupt) cancels it. nsh test calls
// a test file's setup(), test and teardown() through it.
func (r *Run) Call(name string, fn starlark.Callable, args starlark.Tuple) (starlark.Value, error) {
	th := r.NewThread(name)
	var v starlark.Value
	err := r.track(th, func() error {
		var err error
		v, err = starlark.Call(th, fn, args, nil)
		return err
	})
	return v, err
}
