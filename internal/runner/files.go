package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// copyFiles copies the regular files of dir into workdir, owned by uid when it is not 0
// (the program's, so that it may change its own files), at most MaxFilesBytes in total.
// Names starting with '.' are skipped: a downward API volume keeps its real files under
// ..data and the like, and links to them by name. Symlinks are followed, since that is how
// such a volume shows its files; dir is the platform's, not the program's.
func copyFiles(dir, workdir string, uid int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	var total int64
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if strings.ContainsRune(name, '/') || name == "" {
			return fmt.Errorf("refusing the file name %q", name)
		}
		n, err := copyFile(filepath.Join(dir, name), filepath.Join(workdir, name), uid, MaxFilesBytes-total)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		total += n
	}
	return nil
}

// errTooLarge: the files hold more than MaxFilesBytes together.
var errTooLarge = fmt.Errorf("the files hold more than %d bytes together", MaxFilesBytes)

// copyFile copies src, if it is a regular file (after symlinks), to dst, which must not
// exist, and returns the bytes copied; more than limit is an error. Anything else (a
// directory) is skipped.
func copyFile(src, dst string, uid int, limit int64) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, nil
	}
	// O_EXCL|O_NOFOLLOW: the workdir is the program's, and a link left in it (by a
	// previous step) must not redirect the runner's write.
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(in, limit+1))
	if err == nil && n > limit {
		err = errTooLarge
	}
	if err == nil && uid != 0 {
		err = out.Chown(uid, uid)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, errors.Join(err, os.Remove(dst))
	}
	return n, nil
}
