package runner

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coderun-dev/coderun/internal/report"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := DefaultConfig()
	valid.Source = "/code/main.py"
	if err := valid.Validate(); err != nil {
		t.Fatalf("default config with a source: %v", err)
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"no source", func(c *Config) { c.Source = "" }, "source file is required"},
		{"no python", func(c *Config) { c.Python = "" }, "python"},
		{"no workdir", func(c *Config) { c.Workdir = "" }, "working directory"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout"},
		{"huge timeout", func(c *Config) { c.Timeout = MaxTimeout + 1 }, "timeout"},
		{"zero output limit", func(c *Config) { c.OutputLimit = 0 }, "output limit"},
		{"output limit over the maximum", func(c *Config) { c.OutputLimit = report.MaxOutputLimit + 1 }, "output limit"},
		{"output limit at the maximum", func(c *Config) { c.OutputLimit = report.MaxOutputLimit }, ""},
		{"negative memory limit", func(c *Config) { c.MemoryLimit = -1 }, "memory limit"},
		{"zero processes", func(c *Config) { c.MaxProcesses = 0 }, "max processes"},
		{"negative file size", func(c *Config) { c.MaxFileSize = -1 }, "file size"},
		{"zero file size", func(c *Config) { c.MaxFileSize = 0 }, ""},
		{"too few open files", func(c *Config) { c.MaxOpenFiles = 3 }, "open files"},
		{"negative uid", func(c *Config) { c.RunAsUID = -5 }, "uid"},
		{"uid too large", func(c *Config) { c.RunAsUID = 1 << 32 }, "uid"},
		{"no self", func(c *Config) { c.Self = "" }, "executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one about %q", err, tt.wantErr)
			}
		})
	}
	t.Run("uid needs root", func(t *testing.T) {
		c := valid
		c.RunAsUID = 12345
		err := c.Validate()
		if root := os.Geteuid() == 0; root != (err == nil) {
			t.Errorf("root %v, error %v", root, err)
		}
	})
}

func TestCPULimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		timeout    time.Duration
		soft, hard uint64
	}{
		{time.Millisecond, 2, 3},
		{time.Second, 2, 3},
		{time.Second + time.Nanosecond, 3, 4},
		{1500 * time.Millisecond, 3, 4},
		{10 * time.Second, 11, 12},
	}
	for _, tt := range tests {
		c := Config{Timeout: tt.timeout}
		if soft, hard := c.cpuLimitSeconds(); soft != tt.soft || hard != tt.hard {
			t.Errorf("timeout %v: RLIMIT_CPU %d/%d, want %d/%d", tt.timeout, soft, hard, tt.soft, tt.hard)
		}
	}
}
