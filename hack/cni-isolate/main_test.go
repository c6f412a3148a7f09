/*
Copyright 2026 The coderun Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestPodOutsideIsolatedNamespacesPassesThrough(t *testing.T) {
	conf := `{"cniVersion":"1.0.0","name":"n","namespaces":["coderun-runs"],"chain":"C",` +
		`"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.244.0.7/24"}]}}`
	var out bytes.Buffer
	// No iptables call happens for another namespace, so this runs without root.
	if err := run("ADD", "abc", "IgnoreUnknown=1;K8S_POD_NAMESPACE=coderun-system;K8S_POD_NAME=p", strings.NewReader(conf), &out); err != nil {
		t.Fatal(err)
	}
	if want := `{"cniVersion":"1.0.0","ips":[{"address":"10.244.0.7/24"}]}`; out.String() != want {
		t.Fatalf("result = %s, want the previous result %s", out.String(), want)
	}
}

func TestIsolationRulesDropBothDirections(t *testing.T) {
	addrs, err := podAddresses([]byte(`{"ips":[{"address":"10.244.0.7/24"},{"address":"fd00::7/64"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{netip.MustParseAddr("10.244.0.7")}; !slices.Equal(addrs, want) {
		t.Fatalf("addresses = %v, want %v", addrs, want)
	}
	rules := isolationRules("CODERUN-ISOLATE", "abc", addrs)
	want := [][]string{
		{"CODERUN-ISOLATE", "-s", "10.244.0.7/32", "-m", "comment", "--comment", "coderun-isolate:abc", "-j", "DROP"},
		{"CODERUN-ISOLATE", "-d", "10.244.0.7/32", "-m", "comment", "--comment", "coderun-isolate:abc", "-j", "DROP"},
	}
	if !slices.EqualFunc(rules, want, slices.Equal) {
		t.Fatalf("rules = %q, want %q", rules, want)
	}
}

func TestPodWithoutIPv4IsAnError(t *testing.T) {
	if _, err := podAddresses([]byte(`{"ips":[]}`)); err == nil {
		t.Fatal("a pod without an IPv4 address must fail its network setup, not run unisolated")
	}
}

func TestArgValue(t *testing.T) {
	args := "IgnoreUnknown=1;K8S_POD_NAMESPACE=coderun-runs;K8S_POD_NAME=run-x"
	if got := argValue(args, "K8S_POD_NAMESPACE"); got != "coderun-runs" {
		t.Fatalf("namespace = %q", got)
	}
	if got := argValue(args, "MISSING"); got != "" {
		t.Fatalf("missing key = %q", got)
	}
}

func TestRuleToDeleteMatchesIptablesOutput(t *testing.T) {
	// What `iptables -S CODERUN-ISOLATE` prints for a rule added by isolationRules.
	line := `-A CODERUN-ISOLATE -s 10.244.0.4/32 -m comment --comment "coderun-isolate:3209afa1" -j DROP` + "\n"
	want := []string{"-D", "CODERUN-ISOLATE", "-s", "10.244.0.4/32", "-m", "comment", "--comment", "coderun-isolate:3209afa1", "-j", "DROP"}
	if got := ruleToDelete(line, "coderun-isolate:3209afa1"); !slices.Equal(got, want) {
		t.Fatalf("ruleToDelete = %q, want %q", got, want)
	}
	if got := ruleToDelete(line, "coderun-isolate:other"); got != nil {
		t.Fatalf("a rule of another container was selected: %q", got)
	}
	if got := ruleToDelete("-N CODERUN-ISOLATE\n", "coderun-isolate:3209afa1"); got != nil {
		t.Fatalf("the chain line was selected: %q", got)
	}
}
