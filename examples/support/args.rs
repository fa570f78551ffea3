//! The benchmarks' command lines: `--name number` pairs.

/// Each `--name number` pair of the command line, in order.
pub fn numbers() -> Result<Vec<(String, u64)>, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.chunks(2)
        .map(|pair| {
            let value = pair.get(1).and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{} needs a number", pair[0]))?;
            Ok((pair[0].clone(), value))
        })
        .collect()
}
