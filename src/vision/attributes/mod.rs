//! Face attributes for lobby statistics (`facegate analyze`, `[analyze]` in `run`): estimated
//! age, gender and expression per face. Opt-in personal data: nothing here ever takes part in
//! deciding who gets in.

use serde::Serialize;

/// The seven expressions, in the order of the models' outputs and of DeepFace's `emotion` keys.
pub const EMOTIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// What the attribute models estimate for one face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceAttributes {
    /// Estimated age in years.
    pub age: f32,
    /// The model's spread around `age` in years, where it gives one.
    pub age_spread: Option<f32>,
    /// Probability (0-1) that the face is a woman's; a man's is `1 - woman`.
    pub woman: f32,
    /// Expression probabilities in [`EMOTIONS`] order, summing to 1.
    pub emotion: [f32; 7],
}

impl FaceAttributes {
    /// `"Woman"` or `"Man"`, DeepFace's labels.
    pub fn dominant_gender(&self) -> &'static str {
        if self.woman >= 0.5 { "Woman" } else { "Man" }
    }

    /// The most probable expression's name.
    pub fn dominant_emotion(&self) -> &'static str {
        let best = (0..EMOTIONS.len()).fold(0, |best, i| if self.emotion[i] > self.emotion[best] { i } else { best });
        EMOTIONS[best]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(woman: f32, emotion: [f32; 7]) -> FaceAttributes {
        FaceAttributes { age: 30.0, age_spread: None, woman, emotion }
    }

    #[test]
    fn dominant_labels_follow_the_largest_probability() {
        let f = face(0.7, [0.05, 0.0, 0.05, 0.1, 0.6, 0.1, 0.1]);
        assert_eq!(f.dominant_gender(), "Woman");
        assert_eq!(f.dominant_emotion(), "sad");
        let f = face(0.2, [0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.9]);
        assert_eq!(f.dominant_gender(), "Man");
        assert_eq!(f.dominant_emotion(), "neutral");
    }
}
