package main

import (
	"fmt"
	"time"

	"nsh.dev/nsh/builtins"
	"nsh.dev/nsh/interp"
)

func main() {
	t0 := time.Now()
	tb := builtins.Table()
	t1 := time.Now()
	in := interp.New(interp.Config{Builtins: tb, Prompt: builtins.Prompt})
	t2 := time.Now()
	r := in.NewRun(".", []string{"-c"})
	t3 := time.Now()
	_, err := r.ExecFile("-c", "pass")
	t4 := time.Now()
	r.Close()
	t5 := time.Now()
	fmt.Println(t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3), t5.Sub(t4), err)
	for i := 0; i < 3; i++ {
		t0 = time.Now()
		tb = builtins.Table()
		t1 = time.Now()
		in = interp.New(interp.Config{Builtins: tb, Prompt: builtins.Prompt})
		t2 = time.Now()
		fmt.Println("warm", t1.Sub(t0), t2.Sub(t1))
	}
}
