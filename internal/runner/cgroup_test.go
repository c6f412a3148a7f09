package runner

import "testing"

func TestParseOOMKills(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		n      int64
		wantOK bool
	}{
		{"low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n", 2, true},
		{"oom_kill_disable 0\nunder_oom 0\noom_kill 17\n", 17, true},
		{"oom_kill_disable 0\nunder_oom 0\n", 0, false},
		{"", 0, false},
		{"oom_kill x\n", 0, false},
	}
	for _, tt := range tests {
		n, ok := parseOOMKills([]byte(tt.in))
		if n != tt.n || ok != tt.wantOK {
			t.Errorf("parseOOMKills(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.wantOK)
		}
	}
	if _, ok := readOOMKills([]string{"/nonexistent/memory.events"}); ok {
		t.Error("a missing file gave a count")
	}
}
