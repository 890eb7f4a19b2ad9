//! DPO and Bradley-Terry losses against TRL 1.16's own code:
//! ../shared/fixtures/losses/losses.json (`dpo`: every loss_type / beta / label_smoothing case,
//! `bradley_terry`: with and without margins and reward centring), see that folder's README.

use didact_model::burn::tensor::{Device, Tensor, TensorData};
use didact_train::dpo_loss::{self, DpoLoss, DpoObjective, PairLogps};
use didact_train::{bt_loss, bt_loss_tensor};
use serde_json::Value;

fn fixture() -> Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/losses/losses.json"
    );
    serde_json::from_str(&std::fs::read_to_string(p).expect("shared/fixtures beside the checkout"))
        .unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn t(v: &[f64], d: &Device) -> Tensor<1> {
    Tensor::from_data(
        TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [v.len()]),
        d,
    )
}

#[test]
fn dpo_losses_and_rewards_match_trl() {
    let fx = fixture();
    let device = Device::flex();
    let cases = fx["dpo"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for c in cases {
        let o = DpoObjective {
            loss: DpoLoss::parse(c["loss_type"].as_str().unwrap()).unwrap(),
            beta: c["beta"].as_f64().unwrap(),
            label_smoothing: c["label_smoothing"].as_f64().unwrap(),
            rpo_alpha: 0.0,
        };
        let (pc, pr) = (
            f64s(&c["policy_chosen_logps"]),
            f64s(&c["policy_rejected_logps"]),
        );
        let (rc, rr) = (
            f64s(&c["reference_chosen_logps"]),
            f64s(&c["reference_rejected_logps"]),
        );
        let (lc, lr) = (f64s(&c["chosen_lengths"]), f64s(&c["rejected_lengths"]));
        let want = f64s(&c["losses"]);
        let (want_c, want_r) = (f64s(&c["chosen_rewards"]), f64s(&c["rejected_rewards"]));
        let mut sum = 0.0;
        let mut acc = 0.0;
        let mut margin = 0.0;
        for i in 0..pc.len() {
            let p = PairLogps {
                policy_chosen: pc[i],
                policy_rejected: pr[i],
                ref_chosen: rc[i],
                ref_rejected: rr[i],
                len_chosen: lc[i] as usize,
                len_rejected: lr[i] as usize,
            };
            let l = dpo_loss::pair_loss(&o, &p);
            assert!(
                (l - want[i]).abs() < 1e-9,
                "{o:?} pair {i}: {l} vs {}",
                want[i]
            );
            let (a, b) = dpo_loss::pair_rewards(&o, &p);
            assert!((a - want_c[i]).abs() < 1e-9 && (b - want_r[i]).abs() < 1e-9);
            sum += l;
            acc += (a > b) as u8 as f64;
            margin += a - b;
        }
        let n = pc.len() as f64;
        assert!((sum / n - c["loss_mean"].as_f64().unwrap()).abs() < 1e-9);
        assert!((acc / n - c["reward_accuracy"].as_f64().unwrap()).abs() < 1e-6);
        assert!((margin / n - c["reward_margin_mean"].as_f64().unwrap()).abs() < 1e-9);

        // The f32 tensor form training differentiates: same values to float precision.
        let got: Vec<f32> = dpo_loss::loss_tensor(
            &o,
            t(&pc, &device),
            t(&pr, &device),
            t(&rc, &device),
            t(&rr, &device),
            t(&lc, &device),
            t(&lr, &device),
        )
        .into_data()
        .try_to_vec()
        .unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() < 1e-4 * w.abs().max(1.0),
                "{o:?} tensor: {g} vs {w}"
            );
        }
    }
}

#[test]
fn bradley_terry_matches_trl() {
    let fx = fixture();
    let device = Device::flex();
    for c in fx["bradley_terry"].as_array().unwrap() {
        let (ch, rj) = (f64s(&c["rewards_chosen"]), f64s(&c["rewards_rejected"]));
        let margin = c["margin"].as_array().map(|_| f64s(&c["margin"]));
        let center = c["center_rewards_coefficient"].as_f64();
        let want = c["loss"].as_f64().unwrap();
        let got = bt_loss(&ch, &rj, margin.as_deref(), center);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        let tl: f32 = bt_loss_tensor(
            t(&ch, &device),
            t(&rj, &device),
            margin.as_ref().map(|m| t(m, &device)),
            center,
        )
        .into_scalar();
        assert!((tl as f64 - want).abs() < 1e-5, "tensor {tl} vs {want}");
        let acc = ch.iter().zip(&rj).filter(|(a, b)| a > b).count() as f64 / ch.len() as f64;
        assert!((acc - c["accuracy"].as_f64().unwrap()).abs() < 1e-6);
    }
}
