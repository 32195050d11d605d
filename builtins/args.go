package builtins

import (
	"fmt"
	"strings"
)

// checkNoNUL refuses a string that goes to the kernel (or to the spawn
// helper's C code) as a C string: there a NUL ends it, so "a\x00b" would
// silently become "a". what names the argument in the message.
func checkNoNUL(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s %q contains a NUL byte", what, s)
	}
	return nil
}
