package desktop

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
)

// decodeXWD reads the screen dump `xwd -root` writes: a big-endian header
// of 25 words, the window name, a colour map, then the pixels. Only the
// 24- and 32-bit true-colour dumps an X server such as Xvfb writes are
// handled.
func decodeXWD(b []byte) (image.Image, error) {
	if len(b) < 100 {
		return nil, fmt.Errorf("xwd: %d bytes, shorter than a header", len(b))
	}
	h := make([]uint32, 25)
	for i := range h {
		h[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	headerSize, version, width, height := h[0], h[1], int(h[4]), int(h[5])
	byteOrder, bpp, stride := h[7], h[11], int(h[12])
	masks, ncolors := [3]uint32{h[14], h[15], h[16]}, h[19]
	if version != 7 || (bpp != 32 && bpp != 24) || width <= 0 || height <= 0 || width > 1<<14 || height > 1<<14 {
		return nil, fmt.Errorf("xwd: version %d, %d bits per pixel, %dx%d: not a true-colour dump", version, bpp, width, height)
	}
	start := int(headerSize) + int(ncolors)*12
	bytesPP := int(bpp / 8)
	if start < 0 || len(b) < start+stride*height || stride < bytesPP*width {
		return nil, fmt.Errorf("xwd: %d bytes, too short for %dx%d", len(b), width, height)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if byteOrder == 1 {
		order = binary.BigEndian
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := 0; y < height; y++ {
		row := b[start+y*stride:]
		for x := 0; x < width; x++ {
			p := pixel(row[bytesPP*x:bytesPP*x+bytesPP], order)
			img.SetRGBA(x, y, color.RGBA{channel(p, masks[0]), channel(p, masks[1]), channel(p, masks[2]), 255})
		}
	}
	return img, nil
}

func pixel(b []byte, order binary.ByteOrder) uint32 {
	if len(b) == 4 {
		return order.Uint32(b)
	}
	if order == binary.BigEndian {
		return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	}
	return uint32(b[2])<<16 | uint32(b[1])<<8 | uint32(b[0])
}

func channel(p, mask uint32) uint8 {
	if mask == 0 {
		return 0
	}
	shift := 0
	for mask&1 == 0 {
		mask >>= 1
		shift++
	}
	return uint8((p >> shift) & mask)
}
