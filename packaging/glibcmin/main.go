// Command glibcmin prints the newest GLIBC_x.y symbol version an ELF
// binary needs (e.g. 2.34): the .deb's libc6 dependency
// (packaging/build-packages.sh), so an older system refuses the package
// instead of coral failing at start with "GLIBC_2.34 not found".
package main

import (
	"debug/elf"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: glibcmin BINARY")
		os.Exit(2)
	}
	v, err := newestGlibc(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "glibcmin:", err)
		os.Exit(1)
	}
	fmt.Println(v)
}

// newestGlibc is the highest GLIBC_ version among path's imported symbols.
func newestGlibc(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	syms, err := f.ImportedSymbols()
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	best, bestText := []int(nil), ""
	for _, s := range syms {
		text, ok := strings.CutPrefix(s.Version, "GLIBC_")
		if !ok {
			continue
		}
		if v, ok := parseVersion(text); ok && newer(v, best) {
			best, bestText = v, text
		}
	}
	if bestText == "" {
		return "", fmt.Errorf("%s: needs no versioned glibc symbol (a static binary?)", path)
	}
	return bestText, nil
}

func parseVersion(s string) ([]int, bool) {
	var v []int
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}

func newer(a, b []int) bool {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x > y
		}
	}
	return false
}
