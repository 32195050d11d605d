package labs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"nsh.dev/nsh/internal/nsctx"
	"nsh.dev/nsh/internal/reaper"
)

// Step is one undo step of a journal record: a reaper.Step whose
// namespaces are paths ("" is the namespace of whoever undoes it: the
// host's, for a lab made by root).
type Step struct {
	Kind   string `json:"kind"`
	Arg    uint64 `json:"arg,omitempty"`
	Path   string `json:"path,omitempty"`
	Value  string `json:"value,omitempty"`
	Expect string `json:"expect,omitempty"`
	Mnt    string `json:"mnt,omitempty"`
	Net    string `json:"net,omitempty"`
	UTS    string `json:"uts,omitempty"`
	// NetIno is the inode of the network namespace at Net when the step
	// was written: a step is not done in another namespace that took the
	// name since (0: not known, as in journals of older nsh).
	NetIno uint64 `json:"net_ino,omitempty"`
}

// Record is a journal record: the undo of one change, as last given.
type Record struct {
	ID    uint64 `json:"id"`
	What  string `json:"what,omitempty"`
	Steps []Step `json:"steps,omitempty"`
	// Del withdraws the record: the change failed, was undone, or went.
	Del bool `json:"del,omitempty"`
}

// Note is a journal note: what one applied change built, for nsh status
// to compare with the kernel. Kind is the change record's type
// (change.LinkAdd: "LinkAdd") and Rec its typed fields as JSON; NS maps
// the descriptors that name unnamed network namespaces in Rec
// (change.Netns.Fd, as a decimal string) to the paths the lab keeps them
// on. Gone withdraws note ID: the change was undone while the recipe ran.
type Note struct {
	ID   uint64            `json:"id"`
	Kind string            `json:"kind,omitempty"`
	NS   map[string]string `json:"ns,omitempty"`
	Rec  json.RawMessage   `json:"rec,omitempty"`
	Gone bool              `json:"gone,omitempty"`
}

// noteLine is a journal line holding a note (a record's line has none;
// readers that know no notes skip the line, as it has no id).
type noteLine struct {
	Note *Note `json:"note"`
}

// Journal appends a lab's records to its journal file: the undo steps of
// each change, given before the change is made, replaced once it is,
// withdrawn when no longer needed (see change.Reaper, which it
// implements, usually beside the run's reaper: see Tee). Each record is
// one line written with one write(2) in O_APPEND mode; a line cut short by
// a crash is ignored by Read.
type Journal struct {
	// Lenient drops the steps in namespaces that have no path (a run's
	// journal: the reaper has them all); else such a record is an error.
	Lenient bool
	mu      sync.Mutex
	f       *os.File
	path    func(*nsctx.NS) (string, error)
	next    uint64
	frozen  bool
	err     error
}

// OpenJournal opens (creates) the journal of the lab in dir; path names a
// namespace of a step by a path that outlives the run ("" for nsh's own).
func OpenJournal(dir string, path func(*nsctx.NS) (string, error)) (*Journal, error) {
	f, err := os.OpenFile(filepath.Join(dir, "journal"), os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	return &Journal{f: f, path: path}, nil
}

// Skip makes the journal's record ids start after id (one given
// elsewhere, that the next must follow).
func (j *Journal) Skip(id uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.next < id {
		j.next = id
	}
}

// NewID returns a record id.
func (j *Journal) NewID() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.next++
	return j.next
}

// Set writes record id's steps, replacing the ones before.
func (j *Journal) Set(id uint64, what string, ops ...reaper.Op) error {
	rec := Record{ID: id, What: what}
	for _, op := range ops {
		s := op.Step()
		st := Step{Kind: s.Kind, Arg: s.Arg, Path: s.Path, Value: s.Value, Expect: s.Expect}
		var err error
		skip := false
		for _, x := range []struct {
			ns  *nsctx.NS
			out *string
		}{{s.Mnt, &st.Mnt}, {s.Net, &st.Net}, {s.UTS, &st.UTS}} {
			if x.ns != nil {
				if *x.out, err = j.path(x.ns); err != nil {
					if j.Lenient {
						skip = true
						continue
					}
					return fmt.Errorf("journal of %s: %w", what, err)
				}
			}
		}
		if s.Net != nil && st.Net != "" {
			st.NetIno = s.Net.Ino
		}
		if !skip {
			rec.Steps = append(rec.Steps, st)
		}
	}
	return j.write(rec)
}

// Del withdraws record id.
func (j *Journal) Del(id uint64) error { return j.write(Record{ID: id, Del: true}) }

// Note writes a note (n.ID from NewID).
func (j *Journal) Note(n Note) error { return j.write(noteLine{&n}) }

func (j *Journal) write(r any) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.frozen {
		return nil
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		if j.err == nil {
			j.err = err
		}
		return err
	}
	return nil
}

// Freeze makes the journal ignore what comes next: the lab is up, and
// what the run does to its objects from now (keeping them, forgetting
// them) must not withdraw their records. It returns the first failed
// write, if any.
func (j *Journal) Freeze() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.frozen = true
	return j.err
}

// Close closes the journal file.
func (j *Journal) Close() error { return j.f.Close() }

// Read returns the live records of the journal in dir (set and not
// withdrawn), oldest first.
func Read(dir string) ([]Record, error) {
	recs, _, err := readJournal(dir, false)
	return recs, err
}

// ReadAll returns the live records of the journal in dir (set and not
// withdrawn) and its live notes, each oldest first.
func ReadAll(dir string) ([]Record, []Note, error) { return readJournal(dir, true) }

// notePrefix starts every note line (json.Marshal of a noteLine).
var notePrefix = []byte(`{"note":`)

// readJournal reads the journal in dir; the notes only if wantNotes (nsh
// down needs none: they are most of a lab's journal).
func readJournal(dir string, wantNotes bool) ([]Record, []Note, error) {
	f, err := os.Open(filepath.Join(dir, "journal"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	live := map[uint64]int{} // id -> index in recs
	var recs []Record
	var notes []Note
	gone := map[uint64]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), notePrefix) {
			var nl noteLine
			if !wantNotes || json.Unmarshal(sc.Bytes(), &nl) != nil || nl.Note == nil {
				continue
			}
			if nl.Note.Gone {
				gone[nl.Note.ID] = true
			} else {
				notes = append(notes, *nl.Note)
			}
			continue
		}
		var r Record
		if decodeRecord(sc.Bytes(), &r) != nil || r.ID == 0 {
			continue // a line a crash cut short
		}
		i, ok := live[r.ID]
		switch {
		case r.Del && ok:
			recs[i].ID = 0
			delete(live, r.ID)
		case r.Del:
		case ok:
			recs[i] = r
		default:
			live[r.ID] = len(recs)
			recs = append(recs, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	out := recs[:0]
	for _, r := range recs {
		if r.ID != 0 {
			out = append(out, r)
		}
	}
	kept := notes[:0]
	for _, n := range notes {
		if !gone[n.ID] {
			kept = append(kept, n)
		}
	}
	return out, kept, nil
}

// Tee gives the run's reaper (r, nil if it could not start) and the
// journal the same records, under the journal's ids.
type Tee struct {
	J *Journal
	R interface {
		Set(id uint64, what string, ops ...reaper.Op) error
		Del(id uint64) error
	}
}

// NewID returns a record id (the journal's; the reaper takes any
// increasing ids).
func (t Tee) NewID() uint64 { return t.J.NewID() }

// Set gives both the record; the journal first (it outlives the reaper).
func (t Tee) Set(id uint64, what string, ops ...reaper.Op) error {
	err := t.J.Set(id, what, ops...)
	if t.R != nil {
		err = errors.Join(err, t.R.Set(id, what, ops...))
	}
	return err
}

// Del withdraws the record from both.
func (t Tee) Del(id uint64) error {
	err := t.J.Del(id)
	if t.R != nil {
		err = errors.Join(err, t.R.Del(id))
	}
	return err
}
