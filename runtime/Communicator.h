//===- Communicator.h - Collectives between SPMD ranks ----------*- C++ -*-===//
//
// What an `all_reduce` needs from the ranks it runs on. Every rank runs the
// same function on its own shard and calls allReduceSum at the same point
// with the same n; afterwards every rank holds the element-wise sum. The
// interpreter and the JIT-backed Executable share this interface;
// implementations (in-process threads, MPI) live beside the Executable.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/ElemType.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"

#include <cstddef>
#include <cstdint>

namespace moe {

class Communicator {
public:
  virtual ~Communicator();
  /// This rank, in [0, size()).
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// In place: data[0, n) becomes the sum over all ranks of their data[0, n).
  /// Implementations sum in rank order (rank 0 first), so every rank gets
  /// bit-identical results.
  virtual llvm::Error allReduceSum(float *data, size_t n) = 0;
  /// The same for f16/bf16 data (`elem`, the 16-bit patterns): the sum is
  /// accumulated in f32 as above (0.0f, then rank 0, 1, ... widened) and
  /// rounded once to `elem`, so it equals the interpreter's all_reduce of an
  /// f16/bf16 tensor bit for bit. This default widens, sums through the f32
  /// overload and rounds; MPI overrides it to send the 16-bit values (half
  /// the traffic) and widen on arrival.
  virtual llvm::Error allReduceSum(uint16_t *data, size_t n, ElemType elem);
};

/// f16/bf16 bits to f32 and back (round to nearest even), for the
/// Communicators' 16-bit sums.
float widen16(ElemType elem, uint16_t h);
uint16_t narrow16(ElemType elem, float f);
/// The 16-bit sum every rank agrees on: `data` widened to f32, summed by
/// `sumF32` (an f32 all_reduce), rounded once back to `elem`.
llvm::Error allReduceSumWidened(uint16_t *data, size_t n, ElemType elem,
                                llvm::function_ref<llvm::Error(float *, size_t)> sumF32);

} // namespace moe
