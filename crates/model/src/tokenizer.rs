//! Tokenizers through the `tokenizers` crate, saved and loaded as a standard `tokenizer.json`:
//! a fixed character vocabulary (built-in worlds, char-level corpora) or a byte-level BPE
//! trained on a corpus. Special tokens: `<pad>` (id 0) and `<eos>` (id 1, the stop token).

use crate::error::{ModelError, Result};
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

pub const PAD: &str = "<pad>";
pub const EOS: &str = "<eos>";
pub const UNK: &str = "<unk>";

/// A loaded tokenizer with its pad and stop ids resolved.
#[derive(Clone)]
pub struct Tok {
    inner: Tokenizer,
    pub pad_id: u32,
    pub eos_id: u32,
}

fn tk_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

impl Tok {
    /// One token per character of `alphabet` (duplicates ignored), after `<pad>`, `<eos>`, `<unk>`.
    pub fn char_level(alphabet: &str) -> Result<Self> {
        let mut vocab = Vocab::default();
        for s in [PAD, EOS, UNK] {
            let id = vocab.len() as u32;
            vocab.insert(s.to_string(), id);
        }
        let mut chars: Vec<char> = alphabet.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        for c in chars {
            let id = vocab.len() as u32;
            vocab.entry(c.to_string()).or_insert(id);
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, vec![])
            .unk_token(UNK.to_string())
            .build()
            .map_err(tk_err)?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_decoder(Some(Fuse::new()));
        inner
            .add_special_tokens([
                AddedToken::from(PAD, true),
                AddedToken::from(EOS, true),
                AddedToken::from(UNK, true),
            ])
            .map_err(tk_err)?;
        Self::wrap(inner)
    }

    /// Train a byte-level BPE (GPT-2 style) of `vocab_size` entries on `texts`.
    pub fn train_bpe<I, S>(texts: I, vocab_size: usize) -> Result<Self>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        let specials = vec![AddedToken::from(PAD, true), AddedToken::from(EOS, true)];
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(specials.clone())
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut inner = Tokenizer::new(BPE::default());
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        inner.train(&mut trainer, texts).map_err(tk_err)?;
        inner.add_special_tokens(specials).map_err(tk_err)?;
        Self::wrap(inner)
    }

    /// Load a `tokenizer.json`. `<pad>`/`<eos>` are looked up by name; a tokenizer without
    /// them (an HF one) falls back to `</s>`, `<|endoftext|>` or `<|im_end|>` for the stop token.
    pub fn load(path: &Path) -> Result<Self> {
        let inner = Tokenizer::from_file(path)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        Self::wrap(inner)
    }

    fn wrap(inner: Tokenizer) -> Result<Self> {
        let find = |names: &[&str]| names.iter().find_map(|n| inner.token_to_id(n));
        let eos_id = find(&[
            EOS,
            "</s>",
            "<|endoftext|>",
            "<|im_end|>",
            "<|end_of_text|>",
        ])
        .ok_or_else(|| ModelError::Tokenizer("no end-of-sequence token found".into()))?;
        let pad_id = find(&[PAD, "<|pad|>", "<unk>"]).unwrap_or(eos_id);
        Ok(Tok {
            inner,
            pad_id,
            eos_id,
        })
    }

    /// Write `tokenizer.json` (not atomic by itself; callers write into a temp dir).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))
    }

    /// `tokenizer_config.json` for transformers (`AutoTokenizer` then knows the stop and pad
    /// tokens, which TRL's trainers need).
    pub fn hf_tokenizer_config(&self) -> serde_json::Value {
        let name = |id: u32| self.inner.id_to_token(id);
        serde_json::json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": name(self.eos_id),
            "pad_token": name(self.pad_id),
            "clean_up_tokenization_spaces": false,
        })
    }

    /// Token ids of `text`, without special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(tk_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(tk_err)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_level_roundtrip_and_save_load() {
        let tok = Tok::char_level("0123456789+*=").unwrap();
        assert_eq!(tok.pad_id, 0);
        assert_eq!(tok.eos_id, 1);
        let ids = tok.encode("417+86=503").unwrap();
        assert_eq!(ids.len(), 10);
        assert_eq!(tok.decode(&ids).unwrap(), "417+86=503");
        let dir = std::env::temp_dir().join(format!("didact-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("tokenizer.json");
        tok.save(&p).unwrap();
        let back = Tok::load(&p).unwrap();
        assert_eq!(
            back.encode("12*3=36").unwrap(),
            tok.encode("12*3=36").unwrap()
        );
        assert_eq!(back.eos_id, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bpe_trains_and_roundtrips() {
        let text = std::iter::repeat_n("the quick brown fox jumps over the lazy dog. ", 200);
        let tok = Tok::train_bpe(text, 300).unwrap();
        assert!(tok.vocab_size() > 256 && tok.vocab_size() <= 300);
        let s = "the lazy fox, quickly!";
        let ids = tok.encode(s).unwrap();
        assert!(ids.len() < s.len(), "merges learned");
        assert_eq!(tok.decode(&ids).unwrap(), s);
    }

    /// Fixture: ../shared/fixtures/tokenizer/encodings.json, produced by HF `tokenizers` 0.23.3
    /// (Python) from the `tokenizer.json` beside it.
    #[test]
    fn hf_tokenizer_fixture_encodings_match() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/tokenizer");
        let Ok(text) = std::fs::read_to_string(dir.join("encodings.json")) else {
            panic!("fixture missing: {}", dir.display());
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let tok = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        let cases = v["cases"].as_array().expect("cases");
        assert!(!cases.is_empty());
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            let got = tok.encode(text, false).unwrap();
            assert_eq!(got.get_ids(), &want[..], "text {text:?}");
            let decoded = tok.decode(&want, true).unwrap();
            assert_eq!(
                decoded,
                case["decoded"].as_str().unwrap(),
                "decode {text:?}"
            );
            let kept = tok.decode(&want, false).unwrap();
            assert_eq!(kept, case["decoded_keep_special"].as_str().unwrap());
        }
    }
}
