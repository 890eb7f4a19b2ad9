//! Every random stream of a run, named, in one table. A draw is seeded by
//! `row_seed(run seed, stream, index)` (`didact_model::row_seed`, SplitMix64), so what a stage
//! draws depends on the run seed, its stream and its row — never on batch composition or on
//! what ran before in the process (what makes a resumed run identical).
//!
//! Two kinds of stream: a *single* stream, indexed by the round (or 0), and a *per-row family*,
//! one stream per round (`base + round`), indexed by the row. Family bases are 1000 apart and
//! `run.rounds` is at most 999, so no two families meet; singles sit outside every family's
//! range (checked by the test below). The numbers are those earlier versions used, so
//! committed results reproduce, except: the reward model's streams (it shared the teacher's
//! until 2026-11-30), the `truth/*` fresh draw (it overlapped the prompt stream) and
//! Self-Instruct's (they overlapped the DPO and teacher data order).

/// A named stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    // Data.
    /// The arithmetic world's real training problems (index 0).
    WorldTrainSet = 7000,
    /// The seeded shuffle that splits a dataset file into train and held out (index 0).
    DataShuffle = 7001,
    /// The Markov world's real training sentences (index 0).
    MarkovTrainSet = 7002,
    /// Generation prompts of round r (index r).
    Prompts = 3000,
    /// The mix of round r (index r).
    Mix = 4000,
    // Models and data order.
    /// Round 0's fresh weights (index 0).
    PolicyInit = 6000,
    /// A peer policy's own seed (`[run] peers`; index: the peer ≥ 1), in place of the run
    /// seed for its weights, data order and sampling draws (`Env::model_seed`).
    Peer = 6200,
    /// SFT data order of round r (index r).
    SftOrder = 5000,
    /// DPO data order of round r (index r).
    DpoOrder = 5500,
    /// The distillation teacher's weights and data order (index 0).
    TeacherInit = 6100,
    TeacherOrder = 5100,
    /// A trained teacher's own fresh real rows (`[teacher] train_size`, index 0).
    TeacherTrainSet = 7003,
    // Reward model.
    /// Preference pairs derived from a world's rows: train and held out (index 0).
    WorldPrefsTrain = 8100,
    WorldPrefsEval = 8200,
    /// The shuffle that splits a preference file (index 0).
    PrefShuffle = 8000,
    /// The reward head's weights, its data order, the backbone's LM warm-up order and a fresh
    /// backbone's weights (`train-rm`) (index 0).
    RmHeadInit = 8300,
    RmOrder = 8400,
    RmLmOrder = 8500,
    RmBackboneInit = 8600,
    // Per-row families: base + round, indexed by row.
    /// Samples of round r's generate stage.
    Generate = 1000,
    /// Diversity samples of round r's evaluation.
    EvalSamples = 2000,
    /// Self-Instruct: in-context tasks of each prompt, and the instances.
    SelfInstructPrompts = 11000,
    SelfInstructInstances = 12000,
    /// The LLM judge's verdicts.
    Judge = 9000,
    /// `truth/*`'s fresh temperature-1 draw (when generation is not plain sampling).
    TruthDraw = 10000,
}

impl Stream {
    /// Per-row families occupy `base + round`; the rest are single streams.
    pub const FAMILIES: &[Stream] = &[
        Stream::Generate,
        Stream::EvalSamples,
        Stream::SelfInstructPrompts,
        Stream::SelfInstructInstances,
        Stream::Judge,
        Stream::TruthDraw,
    ];

    /// The seed of a single stream at `index` (usually the round).
    pub fn seed(self, run_seed: u64, index: u64) -> u64 {
        didact_model::row_seed(run_seed, self as u64, index)
    }

    /// The stream id of a per-row family in round `r` (then indexed by row).
    pub fn family(self, r: u32) -> u64 {
        debug_assert!(Self::FAMILIES.contains(&self));
        self as u64 + r as u64
    }
}

/// Rounds a run may have: family bases are 1000 apart.
pub const MAX_ROUNDS: u32 = 999;

#[cfg(test)]
mod tests {
    use super::*;

    const SINGLES: &[Stream] = &[
        Stream::WorldTrainSet,
        Stream::DataShuffle,
        Stream::MarkovTrainSet,
        Stream::Prompts,
        Stream::Mix,
        Stream::PolicyInit,
        Stream::Peer,
        Stream::SftOrder,
        Stream::DpoOrder,
        Stream::TeacherInit,
        Stream::TeacherOrder,
        Stream::WorldPrefsTrain,
        Stream::WorldPrefsEval,
        Stream::PrefShuffle,
        Stream::RmHeadInit,
        Stream::RmOrder,
        Stream::RmLmOrder,
        Stream::RmBackboneInit,
    ];

    /// Stream ids a family takes over a run of `MAX_ROUNDS` rounds.
    fn ids(s: Stream) -> std::ops::RangeInclusive<u64> {
        s.family(0)..=s.family(MAX_ROUNDS)
    }

    #[test]
    fn families_never_meet_each_other_or_a_single_stream() {
        for (i, a) in Stream::FAMILIES.iter().enumerate() {
            for b in &Stream::FAMILIES[i + 1..] {
                let (ra, rb) = (ids(*a), ids(*b));
                assert!(
                    ra.end() < rb.start() || rb.end() < ra.start(),
                    "{a:?} {ra:?} meets {b:?} {rb:?}"
                );
            }
            for s in SINGLES {
                assert!(!ids(*a).contains(&(*s as u64)), "{a:?} takes {s:?}");
            }
        }
        let mut singles: Vec<u64> = SINGLES.iter().map(|s| *s as u64).collect();
        singles.sort();
        singles.dedup();
        assert_eq!(
            singles.len(),
            SINGLES.len(),
            "two single streams share a number"
        );
    }

    #[test]
    fn teacher_and_reward_model_have_their_own_streams() {
        let teacher = [Stream::TeacherInit as u64, Stream::TeacherOrder as u64];
        for rm in [
            Stream::RmHeadInit,
            Stream::RmOrder,
            Stream::RmLmOrder,
            Stream::RmBackboneInit,
        ] {
            assert!(!teacher.contains(&(rm as u64)));
            assert_ne!(rm as u64, Stream::PolicyInit as u64);
            assert_ne!(rm as u64, Stream::SftOrder as u64);
        }
    }
}
