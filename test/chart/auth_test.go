package chart_test

import (
	"slices"
	"strings"
	"testing"
)

// TestFrontAuth checks what the API key values give the front: no key file and no trusted
// proxy by default; with front.auth on, the Secret mounted as a folder (a subPath mount
// would never see the Secret's updates, and keys could not change without a restart), the
// front's flags pointing at the file in it, and the limits passed on.
func TestFrontAuth(t *testing.T) {
	d := deployment(t, render(t), "coderun-front")
	c := onlyContainer(t, d, "front")
	for _, flag := range []string{"--api-keys-file", "--anonymous", "--trusted-proxies"} {
		if hasArgPrefix(c, flag) {
			t.Errorf("defaults: the front has %s: %v", flag, c.Args)
		}
	}
	if v := volume(d.Spec.Template.Spec, "api-keys"); v != nil {
		t.Errorf("defaults: an api-keys volume: %+v", v)
	}

	cases := []struct {
		name     string
		set      []string
		secret   string
		key      string
		wantArgs []string
		noArgs   []string
	}{
		{name: "keys only", set: []string{"front.auth.enabled=true", "front.auth.existingSecret=keys"}, secret: "keys", key: "keys.yaml",
			wantArgs: []string{"--api-key-rate=1", "--api-key-burst=10", "--api-key-max-in-flight=4", "--api-keys-reload-interval=5s"},
			noArgs:   []string{"--anonymous", "--trusted-proxies"}},
		{name: "keys, anonymous, proxies", set: []string{"front.auth.enabled=true", "front.auth.existingSecret=api", "front.auth.existingSecretKey=file",
			"front.auth.defaults.rate=3", "front.auth.anonymous.enabled=true", "front.auth.anonymous.burst=2", "front.trustedProxies={10.0.0.0/8,192.168.1.7}"},
			secret: "api", key: "file",
			wantArgs: []string{"--api-key-rate=3", "--anonymous", "--anonymous-rate=0.2", "--anonymous-burst=2", "--anonymous-max-in-flight=1", "--trusted-proxies=10.0.0.0/8,192.168.1.7"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			d := deployment(t, render(t, args...), "coderun-front")
			c := onlyContainer(t, d, "front")
			v := volume(d.Spec.Template.Spec, "api-keys")
			if v == nil || v.Secret == nil || v.Secret.SecretName != tc.secret || len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != tc.key {
				t.Fatalf("api-keys volume %+v, want Secret %s with its key %s", v, tc.secret, tc.key)
			}
			var mount string
			for _, m := range c.VolumeMounts {
				if m.Name == "api-keys" {
					if m.SubPath != "" || !m.ReadOnly {
						t.Errorf("api-keys mount %+v: want a read-only folder, no subPath", m)
					}
					mount = m.MountPath
				}
			}
			if want := "--api-keys-file=" + mount + "/" + v.Secret.Items[0].Path; mount == "" || !slices.Contains(c.Args, want) {
				t.Errorf("args %v lack %s (the file in the mounted Secret)", c.Args, want)
			}
			for _, a := range tc.wantArgs {
				if !slices.Contains(c.Args, a) {
					t.Errorf("args %v lack %s", c.Args, a)
				}
			}
			for _, a := range tc.noArgs {
				if hasArgPrefix(c, a) {
					t.Errorf("args %v hold %s", c.Args, a)
				}
			}
			// The mount is readable by the front's user, whatever the pod's fsGroup.
			if mode := v.Secret.DefaultMode; mode == nil || *mode&0o004 == 0 {
				t.Errorf("the key file's mode %v is not readable by the non-root front", mode)
			}
			if strings.Contains(strings.Join(c.Args, " "), "sha256") {
				t.Error("the args hold key hashes")
			}
		})
	}
}
