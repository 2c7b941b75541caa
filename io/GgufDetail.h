//===- GgufDetail.h - helpers shared by the GGUF reader's sources ----------===//
//
// Internal to io/: the reader (Gguf.cpp) and its metadata accessors
// (GgufMetadata.cpp) build their errors and bounds the same way.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_IO_GGUFDETAIL_H
#define MOE_IO_GGUFDETAIL_H

#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <limits>

namespace moe::gguf::detail {

inline constexpr uint64_t kInt64Max = std::numeric_limits<int64_t>::max();

inline llvm::Error makeError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

} // namespace moe::gguf::detail

#endif
