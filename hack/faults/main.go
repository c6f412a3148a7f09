// Command faults is the fault suite's driver (`make test-faults`, hack/test-faults.sh). It
// puts a sustained mixed load on the local cluster (hello world, a pandas import, a
// timeout and a memory hog, through the front service's /execute and /submit and as
// CodeRuns created with client-go) and, one row at a time, breaks one component during
// it: an operator replica (the leader, then the other), a front replica, PostgreSQL, or one
// of the node's kube-apiserver, etcd, containerd and kubelet (SIGKILL, then started again by
// hack/local-cluster.sh restart). After each fault it checks that every request got a
// correct answer (or an honest SystemError) after retries with the same Idempotency-Key,
// that every CodeRun finished, that every accepted /submit is in the database, that no run
// Job or pod outlived its TTL, and that the operator's and front's memory came back to
// their baseline (read from their cgroups: the node is this machine).
//
// Each invocation appends its rows, as JSON lines, to -results; -report prints the table
// of a results file and ends with `lost runs: N, lost submissions: M`, exiting 1 if
// anything was lost or a check failed. hack/test-faults.sh runs it twice (the release on
// SQLite, then on PostgreSQL with two front replicas), then reports.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type suite struct {
	k           *cluster
	front       *frontClient
	requestRuns *requestRuns
	id          string

	setting, postgresNamespace string
	clients                    int
	before, after, patience    time.Duration
	createEvery                time.Duration
	jobTTL, ttlGrace           time.Duration

	// baseline is each component's memory after the first row (the load without a fault).
	baseline           map[string]int64
	lastOperatorKilled string
}

func main() {
	var (
		s                     suite
		frontURL, faultList   string
		results, report       string
		system, runsNamespace string
	)
	flag.StringVar(&frontURL, "front", "http://127.0.0.1:8080", "base URL of the front service")
	flag.StringVar(&faultList, "faults", "none,operator,operator,front,kube-apiserver,etcd,containerd,kubelet", "faults, one row each, in order; the first should be none (it sets the memory baseline)")
	flag.StringVar(&s.setting, "setting", "SQLite, 1 front replica", "how the release is deployed, for the table")
	flag.StringVar(&system, "namespace", "coderun-system", "namespace of the release")
	flag.StringVar(&runsNamespace, "runs-namespace", "coderun-runs", "namespace of the runs")
	flag.StringVar(&s.postgresNamespace, "postgres-namespace", "coderun-faults-pg", "namespace of the PostgreSQL server (fault postgres)")
	flag.IntVar(&s.clients, "clients", 3, "concurrent HTTP clients of the load")
	flag.DurationVar(&s.createEvery, "create-every", 3*time.Second, "interval between the CodeRuns created directly")
	flag.DurationVar(&s.before, "before", 15*time.Second, "load before each fault")
	flag.DurationVar(&s.after, "after", 20*time.Second, "load after each fault (after the component runs again)")
	flag.DurationVar(&s.patience, "patience", 4*time.Minute, "how long one request is retried, and a CodeRun waited for, before it counts as lost")
	flag.DurationVar(&s.jobTTL, "job-ttl", 30*time.Second, "the operator's jobTTL (runs.jobTTL of the release)")
	flag.DurationVar(&s.ttlGrace, "ttl-grace", time.Minute, "how long past its TTL a run Job or pod may still be there")
	flag.StringVar(&results, "results", "", "file to append the rows to (JSON lines)")
	flag.StringVar(&report, "report", "", "print the table of this results file and exit")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))

	if report != "" {
		os.Exit(printReport(report))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := s.run(ctx, frontURL, parseFaults(faultList), results, system, runsNamespace); err != nil {
		slog.Error("fault suite", "error", err)
		os.Exit(1)
	}
}

func (s *suite) run(ctx context.Context, frontURL string, names []string, results, system, runsNamespace string) error {
	if results == "" {
		return errors.New("-results is required")
	}
	var faults []fault
	for _, name := range names {
		f, err := s.fault(name)
		if err != nil {
			return err
		}
		faults = append(faults, f)
	}
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	s.id = hex.EncodeToString(id)
	var err error
	if s.k, err = newCluster(system, runsNamespace); err != nil {
		return err
	}
	s.front = newFrontClient(strings.TrimRight(frontURL, "/"), s.clients, s.patience)
	if s.requestRuns, err = s.k.watchRequestRuns(ctx); err != nil {
		return err
	}
	out, err := os.OpenFile(results, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	defer func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := s.k.deleteSuiteRuns(cleanup); err != nil {
			slog.Error("deleting the suite's CodeRuns", "error", err)
		}
	}()

	slog.Info("fault suite", "id", s.id, "front", frontURL, "setting", s.setting, "faults", names, "clients", s.clients)
	for i, f := range faults {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i == 0 {
			// The memory baseline: the components as they are under the load before any
			// fault; a later row compares with it after its own load.
			s.baseline = map[string]int64{}
		}
		r := s.runRow(ctx, i, f)
		if i == 0 {
			for _, c := range memoryComponents {
				if s.baseline[c], err = s.memory(ctx, c); err != nil {
					return fmt.Errorf("reading the memory baseline of %s: %w", c, err)
				}
			}
			r.Notes = append(r.Notes, fmt.Sprintf("memory baseline: operator %s, front %s", mib(s.baseline["operator"]), mib(s.baseline["front"])))
		}
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
			return err
		}
	}
	return nil
}

// printReport prints the rows of a results file as a table, their problems and notes, and
// the final line; it returns the exit code.
func printReport(file string) int {
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			return 1
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		fmt.Fprintf(os.Stderr, "%s: no rows\n", file)
		return 1
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(tw, "#\tfault\tsent\tcorrect\tretried\tfailed\tlost\tduplicated\tsubmissions\tlost subm.\trecovery\trow took\tchecks\t")
	lostRuns, lostSubs, failedChecks := 0, 0, 0
	for i, r := range rows {
		checks := "ok"
		if n := len(r.Problems); n > 0 {
			checks = fmt.Sprintf("%d problems", n)
			failedChecks++
		}
		recovery := "-"
		if r.Recovery > 0 {
			recovery = r.Recovery.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", i+1, r.Fault, r.Sent, r.Correct, r.Retried, r.Failed,
			r.Lost, r.Duplicated, r.Submissions, r.LostSubmissions, recovery, r.Took.Round(time.Second), checks)
		lostRuns += r.Lost
		lostSubs += r.LostSubmissions
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i, r := range rows {
		for _, p := range r.Problems {
			fmt.Printf("row %d problem: %s\n", i+1, p)
		}
		for _, n := range r.Notes {
			fmt.Printf("row %d: %s\n", i+1, n)
		}
	}
	fmt.Printf("lost runs: %d, lost submissions: %d\n", lostRuns, lostSubs)
	if lostRuns > 0 || lostSubs > 0 || failedChecks > 0 {
		return 1
	}
	return 0
}
