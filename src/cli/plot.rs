//! The ROC chart for `eval --roc`. Drawn without text (no font is bundled); the curves'
//! colours are listed on the terminal.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

const COLOURS: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];
const COLOUR_NAMES: [&str; 4] = ["blue", "red", "green", "purple"];

/// Draws `(far, tar)` curves on a log-scaled FAR axis (1e-3 .. 1) into a PNG.
pub fn draw_roc(path: &Path, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw ROC chart {}: {e}", path.display());
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let area = root.margin(20, 20, 20, 20);
    let (w, h) = area.dim_in_pixel();
    let to_px = |far: f64, tar: f64| -> (i32, i32) {
        let x = (far.max(1e-3).log10() + 3.0) / 3.0;
        ((x * (w as f64 - 1.0)) as i32, ((1.0 - tar) * (h as f64 - 1.0)) as i32)
    };
    // Grid: decades of FAR and tenths of TAR.
    for decade in [1e-3, 1e-2, 1e-1, 1.0] {
        let (x, _) = to_px(decade, 0.0);
        area.draw(&PathElement::new(vec![(x, 0), (x, h as i32)], RGBColor(200, 200, 200))).map_err(|e| err(&e))?;
    }
    for tenth in 0..=10 {
        let (_, y) = to_px(1.0, tenth as f64 / 10.0);
        area.draw(&PathElement::new(vec![(0, y), (w as i32, y)], RGBColor(230, 230, 230))).map_err(|e| err(&e))?;
    }
    for (i, (name, points)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let px: Vec<(i32, i32)> = points.iter().map(|&(f, t)| to_px(f, t)).collect();
        area.draw(&PathElement::new(px, colour.stroke_width(3))).map_err(|e| err(&e))?;
        eprintln!("ROC {}: {name} is {}", path.display(), COLOUR_NAMES[i % COLOUR_NAMES.len()]);
    }
    root.present().map_err(|e| err(&e))?;
    eprintln!(
        "ROC {}: x = FAR on a log scale (1e-3 .. 1, grid per decade), y = TAR (0 .. 1, grid per 0.1)",
        path.display()
    );
    Ok(())
}

/// Draws DET curves, `(bpcer, apcer)` points, on linear axes 0 .. 1 into a PNG (x = BPCER, live
/// faces rejected; y = APCER, attacks accepted; lower left is better).
pub fn draw_det(path: &Path, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw DET chart {}: {e}", path.display());
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let area = root.margin(20, 20, 20, 20);
    let (w, h) = area.dim_in_pixel();
    let to_px =
        |x: f64, y: f64| -> (i32, i32) { ((x * (w as f64 - 1.0)) as i32, ((1.0 - y) * (h as f64 - 1.0)) as i32) };
    for tenth in 0..=10 {
        let v = tenth as f64 / 10.0;
        let grey = RGBColor(220, 220, 220);
        area.draw(&PathElement::new(vec![to_px(v, 0.0), to_px(v, 1.0)], grey)).map_err(|e| err(&e))?;
        area.draw(&PathElement::new(vec![to_px(0.0, v), to_px(1.0, v)], grey)).map_err(|e| err(&e))?;
    }
    for (i, (name, points)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let px: Vec<(i32, i32)> = points.iter().map(|&(x, y)| to_px(x, y)).collect();
        area.draw(&PathElement::new(px, colour.stroke_width(3))).map_err(|e| err(&e))?;
        eprintln!("DET {}: {name} is {}", path.display(), COLOUR_NAMES[i % COLOUR_NAMES.len()]);
    }
    root.present().map_err(|e| err(&e))?;
    eprintln!("DET {}: x = BPCER (0 .. 1, grid per 0.1), y = APCER (0 .. 1, grid per 0.1)", path.display());
    Ok(())
}
