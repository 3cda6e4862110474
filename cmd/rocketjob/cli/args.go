package cli

import (
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs lets flags follow positional arguments. urfave/cli v2 (like
// the standard flag package) stops parsing flags at the first argument that
// is not a flag, so `job show ID --json` would see "--json" as an argument.
// reorderArgs walks the command path and rewrites the command line so that
// every command's flags come right after its name, global flags given after
// a command move to the front, and the positional arguments come last (after
// "--" when one of them starts with a dash). Unknown flags stay with the
// command they were given to, so the parser reports them.
func reorderArgs(app *cli.App, argv []string) []string {
	if len(argv) < 2 {
		return argv
	}
	type segment struct {
		name  string // command name; "" for the program itself
		flags []string
	}
	rootFlags := withHelp(app.Flags, true)
	segs := []*segment{{}}
	cur := segs[0]
	curFlags, curSubs := rootFlags, app.Commands
	var positional []string
	dashdash := false

	toks := argv[1:]
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t == "--" {
			positional = append(positional, toks[i+1:]...)
			dashdash = true
			break
		}
		if isFlagToken(t) {
			name, _, hasValue := strings.Cut(strings.TrimLeft(t, "-"), "=")
			f := findFlag(curFlags, name)
			target := cur
			if f == nil && cur != segs[0] {
				if g := findFlag(app.Flags, name); g != nil {
					f, target = g, segs[0]
				}
			}
			target.flags = append(target.flags, t)
			if f != nil && !hasValue && !isBoolFlag(f) && i+1 < len(toks) {
				i++
				target.flags = append(target.flags, toks[i])
			}
			continue
		}
		if len(positional) == 0 {
			if sub := findCommand(curSubs, t); sub != nil {
				cur = &segment{name: t}
				segs = append(segs, cur)
				curFlags, curSubs = withHelp(sub.Flags, false), sub.Subcommands
				continue
			}
		}
		positional = append(positional, t)
	}

	out := []string{argv[0]}
	for _, s := range segs {
		if s.name != "" {
			out = append(out, s.name)
		}
		out = append(out, s.flags...)
	}
	need := dashdash
	for _, p := range positional {
		if strings.HasPrefix(p, "-") && p != "-" {
			need = true
		}
	}
	if need {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// isFlagToken reports whether t looks like a flag: a dash and more, but not
// a lone "-" (standard input) nor a negative number.
func isFlagToken(t string) bool {
	return len(t) > 1 && t[0] == '-' && !looksNumeric(t)
}

func looksNumeric(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func withHelp(flags []cli.Flag, root bool) []cli.Flag {
	all := append([]cli.Flag{}, flags...)
	if cli.HelpFlag != nil {
		all = append(all, cli.HelpFlag)
	}
	if root && cli.VersionFlag != nil {
		all = append(all, cli.VersionFlag)
	}
	return all
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func isBoolFlag(f cli.Flag) bool {
	_, ok := f.(*cli.BoolFlag)
	return ok
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
