//go:build !unix

package store

import "errors"

// freeBytes cannot tell on this platform; the watermark is then not enforced.
func freeBytes(string) (int64, error) {
	return 0, errors.New("store: free space unknown on this platform")
}

// memtableBytes cannot tell on this platform.
func memtableBytes(string) (int64, error) {
	return 0, errors.New("store: allocated size unknown on this platform")
}
