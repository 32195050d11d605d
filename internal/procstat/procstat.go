// Package procstat reads the fields of /proc/PID/stat.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Fields returns the fields of /proc/PID/stat after the command name
// (which may hold spaces and ')'): [0] is the state letter, [1] the
// parent's pid, [3] the session, [19] the start time in clock ticks after
// boot (proc(5)'s fields 3, 4, 6 and 22).
func Fields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}
