//! Splitting an MJPEG stream (JPEG images back to back, as `ffmpeg -f mjpeg` and many cameras
//! write them) into frames by walking the JPEG marker structure, so a frame cut short (the
//! next start-of-image comes before its end-of-image) or stray bytes come out as corrupt
//! chunks to skip instead of being glued to their neighbour.

/// One piece of an MJPEG stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// A complete JPEG, from its start-of-image to its end-of-image marker.
    Frame(&'a [u8]),
    /// Bytes that are not a complete JPEG, and why.
    Corrupt(&'a [u8], &'static str),
}

/// Iterates over the frames of an MJPEG byte stream.
#[derive(Debug, Clone)]
pub struct MjpegSplitter<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> MjpegSplitter<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        MjpegSplitter { data, pos: 0 }
    }
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

fn find_soi(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?.windows(2).position(|w| w == [0xFF, SOI]).map(|p| p + from)
}

/// Where the frame starting at `start` (an SOI) ends: `Ok(end)` after its EOI, or
/// `Err((end, why))` for the corrupt bytes `start..end`.
fn frame_end(data: &[u8], start: usize) -> Result<usize, (usize, &'static str)> {
    let len = data.len();
    let resync = |why| Err((find_soi(data, start + 2).unwrap_or(len), why));
    let mut i = start + 2;
    loop {
        if i + 1 >= len {
            return Err((len, "the stream ends inside a frame"));
        }
        if data[i] != 0xFF {
            return resync("bytes where a JPEG marker should be");
        }
        let marker = data[i + 1];
        match marker {
            0xFF => i += 1, // fill byte before a marker
            EOI => return Ok(i + 2),
            SOI => return Err((i, "the frame ends before its end-of-image marker (truncated)")),
            0x01 | 0xD0..=0xD7 => i += 2, // markers without a length
            _ => {
                let Some(&[hi, lo]) = data.get(i + 2..i + 4) else {
                    return Err((len, "the stream ends inside a frame"));
                };
                let segment = usize::from(u16::from_be_bytes([hi, lo]));
                if segment < 2 {
                    return resync("a JPEG segment with an impossible length");
                }
                i += 2 + segment;
                if marker == SOS {
                    // Entropy-coded data: FF is followed by 00 (a stuffed byte) or a restart
                    // marker; anything else is the next real marker.
                    while i + 1 < len && !(data[i] == 0xFF && data[i + 1] != 0 && !(0xD0..=0xD7).contains(&data[i + 1]))
                    {
                        i += 1;
                    }
                }
            }
        }
    }
}

impl<'a> Iterator for MjpegSplitter<'a> {
    type Item = Chunk<'a>;

    fn next(&mut self) -> Option<Chunk<'a>> {
        let data = self.data;
        if self.pos >= data.len() {
            return None;
        }
        let Some(start) = find_soi(data, self.pos) else {
            let rest = &data[self.pos..];
            self.pos = data.len();
            return Some(Chunk::Corrupt(rest, "bytes after the last frame that are not a JPEG"));
        };
        if start > self.pos {
            let junk = &data[self.pos..start];
            self.pos = start;
            return Some(Chunk::Corrupt(junk, "bytes between frames that are not a JPEG"));
        }
        match frame_end(data, start) {
            Ok(end) => {
                self.pos = end;
                Some(Chunk::Frame(&data[start..end]))
            }
            Err((end, why)) => {
                self.pos = end;
                Some(Chunk::Corrupt(&data[start..end], why))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn jpeg(shade: u8) -> Vec<u8> {
        let image = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([shade, x as u8 * 8, y as u8 * 8]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&image).unwrap();
        out
    }

    fn kinds(data: &[u8]) -> Vec<String> {
        MjpegSplitter::new(data)
            .map(|c| match c {
                Chunk::Frame(f) => format!("frame {}", f.len()),
                Chunk::Corrupt(_, why) => format!("corrupt: {why}"),
            })
            .collect()
    }

    #[test]
    fn back_to_back_frames_split_exactly() {
        let (a, b) = (jpeg(10), jpeg(200));
        let stream = [a.clone(), b.clone(), a.clone()].concat();
        let frames: Vec<_> = MjpegSplitter::new(&stream).collect();
        assert_eq!(frames, [Chunk::Frame(&a), Chunk::Frame(&b), Chunk::Frame(&a)]);
    }

    #[test]
    fn truncated_frames_and_junk_are_reported_and_the_rest_survives() {
        let (a, b) = (jpeg(10), jpeg(200));
        let stream = [&a[..a.len() / 2], &b, b"junk", &a, &b[..b.len() - 1]].concat();
        let got = kinds(&stream);
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got[0].starts_with("corrupt"), "{got:?}");
        assert_eq!(got[1], format!("frame {}", b.len()));
        assert!(got[2].contains("between frames"), "{got:?}");
        assert_eq!(got[3], format!("frame {}", a.len()));
        assert!(got[4].contains("ends inside a frame"), "{got:?}");
        // Cut inside the scan data, the next start-of-image shows the truncation.
        let got = kinds(&[&a[..a.len() - 20], &b[..]].concat());
        assert_eq!(
            got,
            [
                "corrupt: the frame ends before its end-of-image marker (truncated)".to_string(),
                format!("frame {}", b.len())
            ]
        );
        assert!(kinds(b"").is_empty());
        assert_eq!(kinds(b"no jpeg here").len(), 1);
    }
}
