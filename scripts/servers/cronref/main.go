// Command cronref answers, for himaplan's differential test, what the
// Kubernetes CronJob controller would compute from a schedule: it parses
// each schedule as the API server validates it (cron.ParseStandard, and no
// "TZ" anywhere in the text) and as the controller then schedules it
// (cron.ParseStandard("TZ=<timeZone> <schedule>"), time zones loaded with
// time.LoadLocation), and prints the next firings from sched.Next.
//
// Time zones come from the IANA data Go embeds with `-tags timetzdata`
// (what kube-controller-manager links through `import _ "time/tzdata"`),
// never from the machine's /usr/share/zoneinfo: time.LoadLocation prefers
// system files, so cronref points ZONEINFO at the copy of the toolchain's
// lib/time/zoneinfo.zip (the file time/tzdata embeds) installed beside the
// binary, and refuses zones that copy does not hold.
//
// Usage:
//
//	cronref version           robfig/cron, Go and embedded tzdata versions
//	cronref next N            stdin: EXPR<TAB>TZ<TAB>RFC3339 lines (EXPR may
//	                          hold tabs: the last two split); stdout per
//	                          line: "ok<TAB>T1<TAB>...<TAB>TN" (UTC, RFC 3339;
//	                          "none" once Next finds nothing within its five
//	                          years) or "error<TAB>MESSAGE"
//	cronref zones FROM TO     stdin: zone names; stdout per zone:
//	                          "ZONE<TAB>OFFSET<TAB>UNIX:OFFSET ..." — the UTC
//	                          offset (seconds) at FROM and every offset change
//	                          in [FROM, TO) (Unix seconds), or "ZONE<TAB>error"
package main

import (
	"archive/zip"
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// tzdataVersion is the IANA release of the embedded data, set at build time
// from the DATA= line of $GOROOT/lib/time/update.bash.
var tzdataVersion = "unknown"

func main() {
	if len(os.Args) < 2 {
		fail("usage: cronref version | next N | zones FROM TO")
	}
	zones := embeddedZones()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch os.Args[1] {
	case "version":
		fmt.Fprintf(out, "robfig/cron %s\ngo %s\ntzdata %s\nzones %d\n", cronVersion(), runtime.Version(), tzdataVersion, len(zones))
	case "next":
		n := intArg(2)
		eachLine(func(line string) { fmt.Fprintln(out, next(line, n, zones)) })
	case "zones":
		from, to := int64(intArg(2)), int64(intArg(3))
		eachLine(func(name string) { fmt.Fprintln(out, transitions(name, from, to, zones)) })
	default:
		fail("unknown command " + os.Args[1])
	}
}

// next answers one EXPR<TAB>TZ<TAB>RFC3339 line.
func next(line string, n int, zones map[string]bool) string {
	// The expression itself may hold tabs: split at the last two.
	j := strings.LastIndex(line, "\t")
	i := strings.LastIndex(line[:max(j, 0)], "\t")
	if i < 0 {
		return "error\tinput line needs 3 tab-separated fields"
	}
	expr, zone, instant := line[:i], line[i+1:j], line[j+1:]
	t, err := time.Parse(time.RFC3339Nano, instant)
	if err != nil {
		return "error\tbad instant: " + err.Error()
	}
	// The API server's validation (pkg/apis/batch/validation).
	if _, err := parse(expr); err != nil {
		return "error\t" + oneLine(err.Error())
	}
	if strings.Contains(expr, "TZ") {
		return "error\tcannot use TZ or CRON_TZ in schedule, use timeZone field instead"
	}
	if zone != "UTC" && !zones[zone] {
		return "error\tzone not in the embedded tzdata: " + zone
	}
	// The controller (formatSchedule in pkg/controller/cronjob).
	sched, err := parse(fmt.Sprintf("TZ=%s %s", zone, expr))
	if err != nil {
		return "error\t" + oneLine(err.Error())
	}
	fields := []string{"ok"}
	for i := 0; i < n; i++ {
		t = sched.Next(t)
		if t.IsZero() {
			fields = append(fields, "none")
			break
		}
		fields = append(fields, t.UTC().Format(time.RFC3339))
	}
	return strings.Join(fields, "\t")
}

// parse is cron.ParseStandard with a panic made an error, as Kubernetes'
// parsers.ParseCronScheduleWithPanicRecovery does (robfig panics on a
// "TZ=..." without a space after it).
func parse(spec string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("failed to parse cron schedule: %v", r)
		}
	}()
	return cron.ParseStandard(spec)
}

// transitions lists a zone's offset at from and its offset changes until to.
func transitions(name string, from, to int64, zones map[string]bool) string {
	if name != "UTC" && !zones[name] {
		return name + "\terror"
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return name + "\terror"
	}
	t := time.Unix(from, 0).In(loc)
	_, offset := t.Zone()
	fields := []string{name, strconv.Itoa(offset)}
	for t.Unix() < to {
		_, end := t.ZoneBounds()
		if end.IsZero() || end.Unix() >= to {
			break
		}
		// Beyond the zone's last listed transition (slim zoneinfo files
		// end in 2007), Go computes periods from the POSIX TZ rule and may
		// return, at a year's end, an end equal to t itself: step past it.
		if !end.After(t) {
			end = t.Add(time.Second)
		}
		t = end.In(loc)
		_, next := t.Zone()
		// A new period may only change the abbreviation or the DST flag.
		if next != offset {
			fields = append(fields, fmt.Sprintf("%d:%d", t.Unix(), next))
			offset = next
		}
	}
	return strings.Join(fields, "\t")
}

// embeddedZones points time.LoadLocation at the toolchain's zoneinfo.zip
// installed beside the binary and returns the zone names it holds.
func embeddedZones() map[string]bool {
	exe, err := os.Executable()
	if err != nil {
		fail("cannot find my own path: " + err.Error())
	}
	path := exe + ".zoneinfo.zip"
	r, err := zip.OpenReader(path)
	if err != nil {
		fail("the embedded tzdata's zoneinfo.zip must sit beside the binary: " + err.Error())
	}
	defer r.Close()
	os.Setenv("ZONEINFO", path)
	zones := map[string]bool{}
	for _, f := range r.File {
		zones[f.Name] = true
	}
	return zones
}

func cronVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/robfig/cron/v3" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func eachLine(f func(string)) {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		f(in.Text())
	}
	if err := in.Err(); err != nil {
		fail("reading stdin: " + err.Error())
	}
}

func intArg(i int) int {
	if len(os.Args) <= i {
		fail("missing argument")
	}
	n, err := strconv.Atoi(os.Args[i])
	if err != nil {
		fail("not a number: " + os.Args[i])
	}
	return n
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "cronref: "+msg)
	os.Exit(2)
}
