//! Training and sampling tokens/s at the reference shape on each CPU backend (criterion).
//! `python3 benches/compare.py` runs this and the PyTorch reference side by side and prints
//! the ratios.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use didact_benches::{
    BATCH, NEW, SEQ, config, devices, dpo_pairs, dpo_steps, rows, sample, train_steps,
};
use std::time::Duration;

const STEPS: usize = 2;

fn train(c: &mut Criterion) {
    let mut g = c.benchmark_group("train");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements((STEPS * BATCH * SEQ) as u64));
    let data = rows(BATCH * STEPS);
    for (name, device) in devices() {
        let mut model = Some(config().init(0, &device).unwrap());
        g.bench_function(name, |b| {
            b.iter(|| {
                let (m, _) = train_steps(model.take().unwrap(), &data, STEPS, &device);
                model = Some(m);
            })
        });
    }
    g.finish();
}

fn generate(c: &mut Criterion) {
    let mut g = c.benchmark_group("sample");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .warm_up_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements((BATCH * NEW) as u64));
    for (name, device) in devices() {
        let model = config().init(0, &device).unwrap();
        g.bench_function(name, |b| b.iter(|| sample(&model, &device)));
    }
    g.finish();
}

fn dpo(c: &mut Criterion) {
    let mut g = c.benchmark_group("dpo");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements((STEPS * BATCH * SEQ) as u64));
    // Every backend but ndarray (the train job already shows where it stands).
    for (name, device) in devices().into_iter().filter(|(n, _)| *n != "ndarray") {
        let reference = config().init(0, &device).unwrap();
        let pairs = dpo_pairs(BATCH / 2 * STEPS, &reference, &device);
        let mut model = Some(reference);
        g.bench_function(name, |b| {
            b.iter(|| {
                let (m, _) = dpo_steps(model.take().unwrap(), &pairs, STEPS, &device);
                model = Some(m);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, train, generate, dpo);
criterion_main!(benches);
