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

// Command cni-isolate is a chained CNI plugin for the local development cluster only. The
// bridge CNI used there does not enforce NetworkPolicy, so coderun's deny-all policy for the
// runs namespace would be a no-op: run pods could reach the node (API server, kubelet) and
// other pods. This plugin gives pods of the listed namespaces what that policy promises: on
// ADD it appends DROP rules for the pod's addresses (as source and as destination) to an
// iptables chain that hack/local-cluster.sh jumps to from INPUT and FORWARD; on DEL it removes
// them. Real clusters use a CNI that enforces NetworkPolicy instead.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// netConf is the plugin's part of the network configuration list.
type netConf struct {
	CNIVersion string          `json:"cniVersion"`
	Name       string          `json:"name"`
	Namespaces []string        `json:"namespaces"`
	Chain      string          `json:"chain"`
	PrevResult json.RawMessage `json:"prevResult,omitempty"`
}

// prevResult holds only the fields this plugin reads; the full result is passed on as is.
type prevResult struct {
	IPs []struct {
		Address string `json:"address"`
	} `json:"ips"`
}

func main() {
	if err := run(os.Getenv("CNI_COMMAND"), os.Getenv("CNI_CONTAINERID"), os.Getenv("CNI_ARGS"), os.Stdin, os.Stdout); err != nil {
		// The CNI error format: the runtime shows msg in the pod's events.
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"cniVersion": "1.0.0", "code": 999, "msg": "cni-isolate: " + err.Error()})
		os.Exit(1)
	}
}

func run(command, containerID, cniArgs string, stdin io.Reader, stdout io.Writer) error {
	if command == "VERSION" {
		_, err := fmt.Fprint(stdout, `{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}`)
		return err
	}
	var conf netConf
	if err := json.NewDecoder(stdin).Decode(&conf); err != nil {
		return fmt.Errorf("reading the network configuration: %w", err)
	}
	if conf.Chain == "" {
		return fmt.Errorf("the configuration has no chain")
	}
	switch command {
	case "ADD":
		if slices.Contains(conf.Namespaces, argValue(cniArgs, "K8S_POD_NAMESPACE")) {
			addrs, err := podAddresses(conf.PrevResult)
			if err != nil {
				return err
			}
			for _, rule := range isolationRules(conf.Chain, containerID, addrs) {
				if err := iptables(append([]string{"-A"}, rule...)...); err != nil {
					return err
				}
			}
		}
		// A chained plugin returns the previous plugin's result unchanged.
		_, err := stdout.Write(conf.PrevResult)
		return err
	case "DEL":
		return deleteRules(conf.Chain, containerID)
	case "CHECK", "GC", "STATUS":
		return nil
	default:
		return fmt.Errorf("unknown CNI_COMMAND %q", command)
	}
}

// argValue reads KEY from CNI_ARGS ("K1=V1;K2=V2").
func argValue(cniArgs, key string) string {
	for kv := range strings.SplitSeq(cniArgs, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// podAddresses returns the IPv4 addresses the previous plugin gave the pod.
func podAddresses(raw json.RawMessage) ([]netip.Addr, error) {
	var res prevResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("reading the previous plugin's result: %w", err)
	}
	var addrs []netip.Addr
	for _, ip := range res.IPs {
		p, err := netip.ParsePrefix(ip.Address)
		if err != nil {
			return nil, fmt.Errorf("pod address %q: %w", ip.Address, err)
		}
		if p.Addr().Is4() {
			addrs = append(addrs, p.Addr())
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("the previous plugin gave the pod no IPv4 address; refusing to leave it unisolated")
	}
	return addrs, nil
}

// isolationRules drops everything from and to each address; the comment names the
// container so that DEL finds the rules again.
func isolationRules(chain, containerID string, addrs []netip.Addr) [][]string {
	rules := make([][]string, 0, 2*len(addrs))
	for _, a := range addrs {
		for _, dir := range []string{"-s", "-d"} {
			rules = append(rules, []string{chain, dir, a.String() + "/32", "-m", "comment", "--comment", "coderun-isolate:" + containerID, "-j", "DROP"})
		}
	}
	return rules
}

func deleteRules(chain, containerID string) error {
	out, err := exec.Command("iptables", "-w", "-S", chain).Output()
	if err != nil {
		return nil // no chain, no rules: the cluster is being torn down
	}
	tag := "coderun-isolate:" + containerID
	for line := range strings.Lines(string(out)) {
		rule := ruleToDelete(line, tag)
		if rule == nil {
			continue
		}
		if err := iptables(rule...); err != nil {
			return err
		}
	}
	return nil
}

// ruleToDelete turns a line of `iptables -S` that carries tag into the arguments that delete
// it, or returns nil. iptables -S quotes comments; our comments hold no spaces, so dropping
// the quotes gives back the arguments the rule was added with.
func ruleToDelete(line, tag string) []string {
	fields := strings.Fields(line)
	for i, f := range fields {
		fields[i] = strings.Trim(f, `"`)
	}
	if len(fields) < 2 || fields[0] != "-A" || !slices.Contains(fields, tag) {
		return nil
	}
	return append([]string{"-D"}, fields[1:]...)
}

func iptables(args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.Command("iptables", append([]string{"-w"}, args...)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
