//! Chat templates: a model's own `chat_template` (from its `tokenizer_config.json`) rendered
//! with a real Jinja engine (minijinja), as transformers' `apply_chat_template` does. A
//! conversation becomes one training example per assistant turn: the prompt is the rendering
//! of the turns before it with `add_generation_prompt = true`, the completion is what the full
//! rendering up to and including that turn adds — so only assistant turns carry loss.

use didact_core::Example;
use minijinja::{Environment, Error, ErrorKind, context};
use serde::Serialize;
use std::path::Path;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A compiled chat template with the special tokens it may refer to.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

fn token_str(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => o
            .get("content")
            .and_then(|c| c.as_str())
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    }
}

impl ChatTemplate {
    /// Compile a template source.
    pub fn new(
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> std::result::Result<Self, String> {
        let mut env = Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| format!("chat_template does not compile: {e}"))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// The template of a checkpoint directory's `tokenizer_config.json`, if it has one
    /// (`chat_template` as a string, or a list of `{name, template}` — `default` is used).
    pub fn from_dir(dir: &Path) -> std::result::Result<Option<Self>, String> {
        let path = dir.join("tokenizer_config.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: invalid JSON: {e}", path.display()))?;
        let source = match &v["chat_template"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(list) => match list.iter().find(|t| t["name"] == "default") {
                Some(t) => t["template"].as_str().unwrap_or("").to_string(),
                None => {
                    return Err(format!(
                        "{}: `chat_template` list has no `default`",
                        path.display()
                    ));
                }
            },
            _ => return Ok(None),
        };
        let t = Self::new(
            &source,
            &token_str(&v["bos_token"]),
            &token_str(&v["eos_token"]),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(t))
    }

    /// Render a conversation.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> std::result::Result<String, String> {
        let t = self.env.get_template("chat").map_err(|e| e.to_string())?;
        t.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
        })
        .map_err(|e| format!("chat_template failed: {e}"))
    }

    /// One example per assistant turn (see the module header).
    pub fn examples(&self, messages: &[Message]) -> std::result::Result<Vec<Example>, String> {
        let mut out = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if m.role != "assistant" {
                continue;
            }
            let prompt = self.render(&messages[..i], true)?;
            let full = self.render(&messages[..=i], false)?;
            let completion = full.strip_prefix(&prompt).ok_or_else(|| {
                format!("messages[{i}]: the template's rendering of the conversation does not extend its rendering of the prompt, so the assistant turn cannot be masked")
            })?;
            if completion.trim().is_empty() {
                return Err(format!("messages[{i}]: empty assistant turn"));
            }
            out.push(Example::real(prompt, completion));
        }
        if out.is_empty() {
            return Err("`messages` has no assistant turn".into());
        }
        Ok(out)
    }
}

/// Parse TRL's `messages` field.
pub fn parse_messages(v: &serde_json::Value) -> std::result::Result<Vec<Message>, String> {
    let turns = v.as_array().ok_or("`messages` must be a list")?;
    turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(Message {
                role: t["role"]
                    .as_str()
                    .ok_or(format!("messages[{i}] has no string `role`"))?
                    .to_string(),
                content: t["content"]
                    .as_str()
                    .ok_or(format!("messages[{i}] has no string `content`"))?
                    .to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-Instruct's published ChatML template (its tokenizer_config.json).
    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn m(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn chatml_renders_like_transformers_and_masks_each_assistant_turn() {
        let t = ChatTemplate::new(CHATML, "<|im_start|>", "<|im_end|>").unwrap();
        let conv = vec![
            m("user", "Hi"),
            m("assistant", "Hello!"),
            m("user", "2+2?"),
            m("assistant", "4"),
        ];
        let sys = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";
        assert_eq!(
            t.render(&conv[..1], true).unwrap(),
            format!("{sys}<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        );
        let ex = t.examples(&conv).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].completion, "Hello!<|im_end|>\n");
        assert!(
            ex[1]
                .prompt
                .ends_with("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")
        );
        assert!(ex[1].prompt.contains("Hello!<|im_end|>"));
        assert_eq!(ex[1].completion, "4<|im_end|>\n");
    }

    #[test]
    fn template_errors_are_reported() {
        assert!(
            ChatTemplate::new("{% for %}", "", "")
                .unwrap_err()
                .contains("does not compile")
        );
        let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        assert!(
            t.render(&[m("user", "x")], true)
                .unwrap_err()
                .contains("roles must alternate")
        );
        let t = ChatTemplate::new(CHATML, "", "").unwrap();
        assert!(
            t.examples(&[m("user", "x")])
                .unwrap_err()
                .contains("no assistant turn")
        );
    }

    #[test]
    fn jsonl_messages_rows_use_the_template() {
        let d = std::env::temp_dir().join(format!("didact-chat-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("chat.jsonl");
        std::fs::write(
            &p,
            concat!(
                r#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}"#,
                "\n",
                r#"{"prompt": "Q:", "completion": " A"}"#,
                "\n",
                r#"{"messages": [{"role": "user", "content": "no reply"}]}"#,
                "\n"
            ),
        )
        .unwrap();
        let t = ChatTemplate::new(CHATML, "", "").unwrap();
        let loaded =
            crate::ingest::load_with_chat(&p, crate::ingest::OnError::Skip, 256, Some(&t)).unwrap();
        assert_eq!(loaded.rows.len(), 3);
        assert_eq!(loaded.rows[1].completion, "4<|im_end|>\n");
        assert_eq!(loaded.rows[2].completion, " A");
        assert_eq!(loaded.skipped, 1);
        assert!(
            loaded.skipped_examples[0].contains(":3")
                && loaded.skipped_examples[0].contains("no assistant turn")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
