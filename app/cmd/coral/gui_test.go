//go:build !nogui

package main

// guiCommandCases are `coral gui`'s answers to bad flags, in a build with
// the window (dir: a directory, an unreadable token file).
func guiCommandCases(dir string) []commandCase {
	return []commandCase{
		{"attach not a URL", []string{"gui", "-attach", "127.0.0.1:8081"}, 1, nil, []string{"want a URL such as http://127.0.0.1:8081"}},
		{"token file without attach", []string{"gui", "-token-file", "x"}, 2, nil, []string{"-token-file needs -attach"}},
		{"attach unreadable token", []string{"gui", "-attach", "http://127.0.0.1:1", "-token-file", dir}, 1, nil, []string{"token file:"}},
	}
}
