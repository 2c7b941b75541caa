//===- SmithReduce.h - Reducing a failing program (moe-smith) ---*- C++ -*-===//
//
// C-Reduce's loop on moe functions: try a smaller variant, keep it when the
// same check still fails with the same kind of failure, until nothing
// shrinks. The variants, tried in this order each round:
//
//   1. delete an op, its uses replaced by an operand of the same type, by
//      an earlier value of that type, or by a new function argument (then
//      dead ops and unused arguments go);
//   2. drop a result of the function;
//   3. narrow a symbol's range (`T in [1, 256]` -> [1, 8]);
//   4. shrink a dim: every standalone integer n of the text replaced by n/2
//      (a variant that does not parse and verify is skipped).
//
// Every variant is printed and parsed back before it is tried, so the
// reduced program is valid text.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <functional>
#include <string>

namespace moe {

/// Does `text` still fail the same way?
using SmithPredicate = std::function<bool(const std::string &text)>;

struct ReduceStats {
  unsigned tries = 0, accepted = 0;
  unsigned opsBefore = 0, opsAfter = 0;
};

/// Reduces `text` while `stillFails`; stops after `seconds` (keeping the
/// smallest so far).
std::string smithReduce(const std::string &text, const SmithPredicate &stillFails,
                        double seconds, ReduceStats &stats);

/// Number of ops (the return excluded) of the single function of `text`.
unsigned smithNumOps(const std::string &text);

} // namespace moe
