//===- TpBench.h - The layers split over 2 in-process ranks -----*- C++ -*-===//
//
// moe_tp2/<layer>/<type>/T:<n>/<delay|nodelay>: each real-size layer after
// `default,tp-split{ranks=2}` (and `delay-allreduce` for `delay`), its two
// ranks run as threads of this process (runtime/InProcessRanks.h). See
// TpBench.cpp for what is timed and the counters.
//
//===----------------------------------------------------------------------===//
#pragma once

namespace moe::bench {

/// Registers the moe_tp2/ benchmarks (not in the default filter).
void registerTpBenchmarks();

} // namespace moe::bench
