package main

import (
	"fmt"
	"slices"
	"time"
)

// percentile returns the p-quantile (0 <= p <= 1) of ds, interpolating linearly between
// the closest ranks (so that the 0.5-quantile is the median).
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	pos := p * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[lo] + time.Duration((pos-float64(lo))*float64(s[lo+1]-s[lo]))
}

// minus returns a[i]-b[i] for each i.
func minus(a, b []time.Duration) []time.Duration {
	d := make([]time.Duration, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return d
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }

// tableRow is one line of the final table: a goal (or, with no verdict, a measurement for
// information), what was measured, and PASS, FAIL or "-".
type tableRow struct{ goal, measured, verdict string }

const (
	pass = "PASS"
	fail = "FAIL"
	// info is the verdict of a row that has no goal.
	info = "-"
)

func verdict(ok bool) string {
	if ok {
		return pass
	}
	return fail
}

// report prints the statistics of every series and the table of goals.
func (b *bench) report(r *results) {
	fmt.Printf("\n%-44s %8s %8s %8s %8s %8s\n", fmt.Sprintf("n=%d", b.n), "min", "p50", "p90", "max", "errors")
	line := func(name string, ds []time.Duration, errs int) {
		if len(ds) == 0 {
			fmt.Printf("%-44s %44s %8d\n", name, "no samples", errs)
			return
		}
		fmt.Printf("%-44s %7.3fs %7.3fs %7.3fs %7.3fs %8d\n", name, percentile(ds, 0).Seconds(), percentile(ds, 0.5).Seconds(),
			percentile(ds, 0.9).Seconds(), percentile(ds, 1).Seconds(), errs)
	}
	line("plain Job (create -> pod Succeeded)", r.job.times, 0)
	line("  its container ended (pod status)", r.ended.times, 0)
	if b.runtimeClass != "" {
		line("plain Job under RuntimeClass "+b.runtimeClass, r.runtimeClassJob.times, 0)
		line("  and under runc, alternating with it", r.runcJob.times, 0)
	}
	line("cold CodeRun (create -> status.result)", r.cold.times, r.cold.errors)
	line("warm CodeRun (create -> status.result)", r.warm.times, r.warm.errors)
	line("  runner's wall time (the floor)", r.warm.walls, 0)
	line("  minus the floor", minus(r.warm.times, r.warm.walls), 0)
	line("warm /execute hello world (send -> answer)", r.execute.times, r.execute.errors)
	line("  runner's wall time (the floor)", r.execute.walls, 0)
	line("  minus the floor", minus(r.execute.times, r.execute.walls), 0)
	if q := r.cold.queued + r.warm.queued; q > 0 {
		fmt.Printf("(%d cold and %d warm CodeRuns were queued behind other clients' runs)\n", r.cold.queued, r.warm.queued)
	}
	if c := r.churn; c != nil {
		fmt.Printf("\npod churn: %d of %d plain pods Succeeded in %.1fs (created in %.1fs): %.2f pods/s\n",
			c.succeeded, c.n, c.elapsed.Seconds(), c.created.Seconds(), c.perSecond())
	}
	if u := r.burst; u != nil {
		fmt.Printf("burst: %d /execute from %d clients answered in %.1fs: %.2f runs/s; %d correct, %d errors, %d lost; %d warm, %d cold, %d path unknown\n",
			u.n, b.clients, u.elapsed.Seconds(), u.perSecond(), u.correct, u.errors, u.lost, u.warm, u.cold, u.unknown)
		if len(u.latencies) > 0 {
			fmt.Printf("burst latency of the correct answers: p50 %.3fs, p90 %.3fs, max %.3fs\n",
				percentile(u.latencies, 0.5).Seconds(), percentile(u.latencies, 0.9).Seconds(), percentile(u.latencies, 1).Seconds())
		}
		for _, p := range u.problems {
			fmt.Printf("burst: for example: %s\n", p)
		}
	}

	rows := b.goalRows(r)
	fmt.Printf("\n%-52s %-40s %s\n", "goal", "measured", "verdict")
	for _, row := range rows {
		fmt.Printf("%-52s %-40s %s\n", row.goal, row.measured, row.verdict)
	}
	failed := 0
	for _, row := range rows {
		if row.verdict == fail {
			failed++
		}
	}
	if failed == 0 {
		fmt.Printf("every goal met\n")
	} else {
		fmt.Printf("%d goal(s) missed\n", failed)
	}
}

// goalRows returns the final table.
func (b *bench) goalRows(r *results) []tableRow {
	var rows []tableRow
	goal := fmt.Sprintf("cold CodeRun / plain Job, medians <= %.2f", b.goal)
	if len(r.cold.times) == 0 || len(r.job.times) == 0 {
		rows = append(rows, tableRow{goal, "no samples", fail})
	} else {
		jobMed, coldMed := percentile(r.job.times, 0.5), percentile(r.cold.times, 0.5)
		ratio := coldMed.Seconds() / jobMed.Seconds()
		rows = append(rows, tableRow{goal, fmt.Sprintf("%.2f (%.3fs / %.3fs)", ratio, coldMed.Seconds(), jobMed.Seconds()), verdict(ratio <= b.goal)})
		endedMed := percentile(r.ended.times, 0.5)
		rows = append(rows, tableRow{"  cold CodeRun / Job's container ended (info)",
			fmt.Sprintf("%.2f (%.3fs / %.3fs)", coldMed.Seconds()/endedMed.Seconds(), coldMed.Seconds(), endedMed.Seconds()), info})
	}
	if len(r.runtimeClassJob.times) > 0 && len(r.runcJob.times) > 0 {
		rcMed, runcMed := percentile(r.runtimeClassJob.times, 0.5), percentile(r.runcJob.times, 0.5)
		rows = append(rows, tableRow{"plain Job under " + b.runtimeClass + " / under runc (info)",
			fmt.Sprintf("%.2f (%.3fs / %.3fs)", rcMed.Seconds()/runcMed.Seconds(), rcMed.Seconds(), runcMed.Seconds()), info})
	}
	if len(r.execute.times) == 0 {
		rows = append(rows,
			tableRow{"warm /execute hello world p50 <= " + ms(b.warmP50), "no samples", fail},
			tableRow{"warm /execute hello world p90 <= " + ms(b.warmP90), "no samples", fail})
	} else {
		p50, p90 := percentile(r.execute.times, 0.5), percentile(r.execute.times, 0.9)
		rows = append(rows,
			tableRow{"warm /execute hello world p50 <= " + ms(b.warmP50), ms(p50), verdict(p50 <= b.warmP50)},
			tableRow{"warm /execute hello world p90 <= " + ms(b.warmP90), ms(p90), verdict(p90 <= b.warmP90)})
	}
	warmRuns := 2 * b.n
	warmErrs := r.warm.errors + r.execute.errors
	rows = append(rows, tableRow{"warm runs all took the warm path and printed 1",
		fmt.Sprintf("%d of %d did not", warmErrs, warmRuns), verdict(warmErrs == 0)})
	if len(r.warm.times) > 0 {
		rows = append(rows, tableRow{"  warm CodeRun create -> result, p50 / p90 (info)",
			ms(percentile(r.warm.times, 0.5)) + " / " + ms(percentile(r.warm.times, 0.9)), info})
	}
	if walls := slices.Concat(r.warm.walls, r.execute.walls); len(walls) > 0 {
		rows = append(rows, tableRow{"  floor: runner's wall time of print(1), p50 (info)", ms(percentile(walls, 0.5)), info})
	}
	if len(r.warm.times) > 0 {
		rows = append(rows, tableRow{"  warm CodeRun minus the floor, p50 (info)", ms(percentile(minus(r.warm.times, r.warm.walls), 0.5)), info})
	}
	if len(r.execute.times) > 0 {
		rows = append(rows, tableRow{"  warm /execute minus the floor, p50 (info)", ms(percentile(minus(r.execute.times, r.execute.walls), 0.5)), info})
	}
	if u, c := r.burst, r.churn; u != nil && c != nil {
		ratio := u.perSecond() / c.perSecond()
		rows = append(rows,
			tableRow{fmt.Sprintf("burst runs/s >= %.2f x plain pods/s", b.churnGoal),
				fmt.Sprintf("%.2f (%.2f runs/s / %.2f pods/s)", ratio, u.perSecond(), c.perSecond()), verdict(ratio >= b.churnGoal)},
			tableRow{"burst errors = 0", fmt.Sprintf("%d of %d", u.errors, u.n), verdict(u.errors == 0)},
			tableRow{"burst lost requests = 0", fmt.Sprintf("%d of %d", u.lost, u.n), verdict(u.lost == 0)},
			tableRow{"  burst paths (info)", fmt.Sprintf("%d warm, %d cold, %d unknown", u.warm, u.cold, u.unknown), info})
	}
	return rows
}
