package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// fault is one thing the suite breaks during the load. inject breaks it and returns once
// the breaking is done (for the node's components: once they run again) with a description
// for the table.
type fault struct {
	name   string
	inject func(ctx context.Context, s *suite) (string, error)
}

func (s *suite) fault(name string) (fault, error) {
	switch name {
	case "none":
		return fault{name, func(context.Context, *suite) (string, error) { return "none (the load alone)", nil }}, nil
	case "operator":
		return fault{name, killOperator}, nil
	case "front":
		return fault{name, func(ctx context.Context, s *suite) (string, error) {
			pods, err := s.k.pods(ctx, s.k.system, componentSelector("front"))
			if err != nil || len(pods) == 0 {
				return "", fmt.Errorf("no running front pod (%v)", err)
			}
			pid, err := killContainer(&pods[0], "front")
			return fmt.Sprintf("front %s of %d (%s) kill -9 pid %d", pods[0].Name, len(pods), s.setting, pid), err
		}}, nil
	case "postgres":
		return fault{name, func(ctx context.Context, s *suite) (string, error) {
			pods, err := s.k.pods(ctx, s.postgresNamespace, map[string]string{"app.kubernetes.io/name": "faults-postgres"})
			if err != nil || len(pods) == 0 {
				return "", fmt.Errorf("no running PostgreSQL pod in %s (%v)", s.postgresNamespace, err)
			}
			pid, err := killContainer(&pods[0], "postgres")
			return fmt.Sprintf("PostgreSQL kill -9 pid %d (%s)", pid, s.setting), err
		}}, nil
	case "kube-apiserver", "etcd", "containerd", "kubelet":
		return fault{name, func(ctx context.Context, s *suite) (string, error) {
			return name + " kill -9, restart", restartComponent(ctx, name)
		}}, nil
	}
	return fault{}, fmt.Errorf("unknown fault %q (none, operator, front, postgres, kube-apiserver, etcd, containerd, kubelet)", name)
}

// killOperator kills the operator replica that holds the leader Lease, unless it is the
// one an earlier row killed: then the other one, so that both replicas get killed in turn.
func killOperator(ctx context.Context, s *suite) (string, error) {
	leader, err := s.k.leader(ctx)
	if err != nil {
		return "", fmt.Errorf("finding the operator's leader: %w", err)
	}
	target, role := leader, "leader"
	if leader.Name == s.lastOperatorKilled {
		pods, err := s.k.pods(ctx, s.k.system, componentSelector("operator"))
		if err != nil {
			return "", err
		}
		for i := range pods {
			if pods[i].Name != leader.Name {
				target, role = &pods[i], "standby"
			}
		}
	}
	pid, err := killContainer(target, "operator")
	if err != nil {
		return "", err
	}
	s.lastOperatorKilled = target.Name
	return fmt.Sprintf("operator %s (%s) kill -9 pid %d", target.Name, role, pid), nil
}

// restartComponent runs hack/local-cluster.sh restart NAME, which kills the component with
// SIGKILL and starts it again, waiting until it is healthy.
func restartComponent(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "hack/local-cluster.sh", "restart", name)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hack/local-cluster.sh restart %s: %w", name, err)
	}
	return nil
}

// parseFaults splits a comma-separated list of faults.
func parseFaults(list string) []string {
	var out []string
	for f := range strings.SplitSeq(list, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
