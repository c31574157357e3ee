//! H.264 to RGB through OpenH264 (bundled C, no system library): used by RTSP cameras and by
//! replays of `.h264` files. Input is Annex B (start-code separated NAL units).

use anyhow::{Result, anyhow};
use image::RgbImage;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

/// What kind of video an Annex-B stream holds, judged from its first NAL unit header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnexBCodec {
    H264,
    H265,
    Unknown,
}

/// Guesses the codec of an Annex-B stream: H.264 streams start with an SPS, PPS, AUD, SEI or
/// slice; H.265 streams with a VPS/SPS/PPS/AUD whose two-byte header reads differently.
pub fn sniff_annexb(data: &[u8]) -> AnnexBCodec {
    let Some(first) = openh264::nal_units(data).next() else { return AnnexBCodec::Unknown };
    let header = first.iter().skip_while(|&&b| b == 0).skip(1).copied().collect::<Vec<u8>>();
    match header.as_slice() {
        // H.265 VPS (32), SPS (33), PPS (34), AUD (35), prefix SEI (39): type in bits 1..7.
        [b0, b1, ..] if matches!((b0 >> 1) & 0x3F, 32..=35 | 39) && b0 & 0x81 == 0 && *b1 == 1 => AnnexBCodec::H265,
        [b0, ..] if b0 & 0x80 == 0 && matches!(b0 & 0x1F, 1 | 5 | 6 | 7 | 8 | 9) => AnnexBCodec::H264,
        _ => AnnexBCodec::Unknown,
    }
}

/// A stateful H.264 decoder producing RGB frames.
pub struct H264Decoder {
    decoder: Decoder,
}

impl H264Decoder {
    pub fn new() -> Result<H264Decoder> {
        let decoder = Decoder::new().map_err(|e| anyhow!("cannot start the H.264 decoder: {e}"))?;
        Ok(H264Decoder { decoder })
    }

    /// Feeds Annex-B data (one or more NAL units); returns a picture when one is complete.
    /// An error means this data could not be decoded (a corrupt frame); the decoder stays usable.
    pub fn decode(&mut self, annexb: &[u8]) -> Result<Option<RgbImage>> {
        let picture = self.decoder.decode(annexb).map_err(|e| anyhow!("H.264 decoder error: {e}"))?;
        Ok(match picture {
            Some(yuv) => Some(to_rgb(&yuv)?),
            None => None,
        })
    }

    /// The pictures still held by the decoder at the end of a stream.
    pub fn flush(&mut self) -> Result<Vec<RgbImage>> {
        let pictures = self.decoder.flush_remaining().map_err(|e| anyhow!("H.264 decoder error at the end: {e}"))?;
        pictures.iter().map(to_rgb).collect()
    }
}

/// Converts a decoded picture, writing straight into the frame's buffer.
fn to_rgb(yuv: &openh264::decoder::DecodedYUV<'_>) -> Result<RgbImage> {
    let (w, h) = yuv.dimensions();
    if w == 0 || h == 0 || w > 16_384 || h > 16_384 {
        return Err(anyhow!("H.264 decoder returned an impossible {w}x{h} picture"));
    }
    let mut pixels = vec![0u8; w * h * 3];
    yuv.write_rgb8(&mut pixels);
    RgbImage::from_raw(w as u32, h as u32, pixels).ok_or_else(|| anyhow!("internal error: RGB buffer size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_tells_h264_from_h265() {
        assert_eq!(sniff_annexb(&[0, 0, 0, 1, 0x67, 0x42, 0, 0x1e]), AnnexBCodec::H264);
        assert_eq!(sniff_annexb(&[0, 0, 1, 0x09, 0xF0]), AnnexBCodec::H264);
        assert_eq!(sniff_annexb(&[0, 0, 0, 1, 0x40, 0x01, 0x0c, 0x01]), AnnexBCodec::H265);
        assert_eq!(sniff_annexb(&[0, 0, 0, 1, 0x46, 0x01, 0x10]), AnnexBCodec::H265);
        assert_eq!(sniff_annexb(b"hello"), AnnexBCodec::Unknown);
    }

    #[test]
    fn garbage_is_an_error_or_nothing_never_a_panic() {
        let mut decoder = H264Decoder::new().unwrap();
        let garbage: Vec<u8> = (0..4000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut data = vec![0, 0, 0, 1, 0x65];
        data.extend_from_slice(&garbage);
        assert!(matches!(decoder.decode(&data), Err(_) | Ok(None)));
    }
}
