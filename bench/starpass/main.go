// Command starpass is the startup benchmark's limit: the least a Go program
// embedding go.starlark.net does to run a one-line script ("pass").
package main

import (
	"os"

	"go.starlark.net/starlark"
)

func main() {
	if _, err := starlark.ExecFile(&starlark.Thread{}, "-c", "pass", nil); err != nil {
		os.Exit(1)
	}
}
