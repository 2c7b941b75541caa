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

#include "llvm/Support/Error.h"

#include <cstddef>

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
};

} // namespace moe
