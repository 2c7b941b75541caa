//===- GgufSource.cpp - Binding params from a GGUF file -------------------===//
#include "runtime/GgufSource.h"
#include "ir/Error.h"
#include "runtime/Formats.h"

#include "fmt/format.h"

#include <cstring>

using namespace moe;
using gguf::GgmlType;

namespace {
} // namespace

std::optional<ElemType> moe::elemTypeFromGgml(GgmlType t) {
  switch (t) {
  case GgmlType::F32:
    return ElemType::F32;
  case GgmlType::F16:
    return ElemType::F16;
  case GgmlType::BF16:
    return ElemType::BF16;
  case GgmlType::Q8_0:
    return ElemType::Q8_0;
  case GgmlType::Q4_0:
    return ElemType::Q4_0;
  case GgmlType::MXFP4:
    return ElemType::MXFP4;
  default:
    return std::nullopt;
  }
}

std::optional<GgmlType> moe::ggmlTypeFromElem(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return GgmlType::F32;
  case ElemType::F16:
    return GgmlType::F16;
  case ElemType::BF16:
    return GgmlType::BF16;
  case ElemType::Q8_0:
    return GgmlType::Q8_0;
  case ElemType::Q4_0:
    return GgmlType::Q4_0;
  case ElemType::MXFP4:
    return GgmlType::MXFP4;
  case ElemType::I32:
    return std::nullopt;
  }
  return std::nullopt;
}

llvm::Expected<std::string> moe::ggufTensorName(const Value &param) {
  const Attribute *a = param.argAttrs().get("gguf");
  if (!a)
    return param.getName();
  if (a->kind() != Attribute::Kind::String)
    return err(fmt::format("param %{}: the gguf attribute must be a string (the tensor's "
                           "name in the file)", param.getName()));
  return a->getString();
}

llvm::Expected<llvm::ArrayRef<uint8_t>> moe::ggufParamData(const gguf::GgufFile &file,
                                                           const Value &param, ElemType elem,
                                                           llvm::ArrayRef<int64_t> shape) {
  auto name = ggufTensorName(param);
  if (!name)
    return name.takeError();
  const gguf::TensorInfo *info = file.findTensor(*name);
  if (!info)
    return err(fmt::format("{}: no tensor named '{}' for param %{}{}", file.name(), *name,
                           param.getName(),
                           param.argAttrs().has("gguf") ? " (named by its gguf attribute)" : ""));
  std::optional<ElemType> have = elemTypeFromGgml(info->type);
  if (!have) { // the reader's "unsupported tensor type X in tensor 'N'"
    auto d = file.tensorData(*name);
    if (!d)
      return d.takeError();
    return err(fmt::format("{}: unsupported tensor type {} in tensor '{}'", file.name(),
                           info->typeName().str(), *name));
  }
  auto dims = info->dims();
  if (*have != elem || llvm::ArrayRef<int64_t>(dims) != shape)
    return err(fmt::format("{}: tensor '{}' is {} {}, param %{} needs {} {}", file.name(),
                           *name, elemTypeName(*have).str(), formatShape(dims),
                           param.getName(), elemTypeName(elem).str(), formatShape(shape)));
  return file.tensorData(*name);
}

llvm::Expected<Tensor> moe::loadGgufParam(const gguf::GgufFile &file, const Value &param,
                                          ElemType elem, llvm::ArrayRef<int64_t> shape) {
  auto data = ggufParamData(file, param, elem, shape);
  if (!data)
    return data.takeError();
  Tensor t = Tensor::fromStored(elem, std::vector<int64_t>(shape.begin(), shape.end()),
                                data->data());
  if (auto e = t.validate())
    return err(fmt::format("{}: tensor '{}': {}", file.name(), *ggufTensorName(param),
                           llvm::toString(std::move(e))));
  return t;
}

ArgSource moe::ggufSource(std::shared_ptr<const gguf::GgufFile> file, ArgSource inputs) {
  return [file = std::move(file), inputs = std::move(inputs)](
             const Value &arg, ElemType elem,
             llvm::ArrayRef<int64_t> shape) -> llvm::Expected<Tensor> {
    if (!arg.isParam())
      return inputs(arg, elem, shape);
    return loadGgufParam(*file, arg, elem, shape);
  };
}

InPlaceSource moe::ggufInPlaceSource(std::shared_ptr<const gguf::GgufFile> file) {
  return [file = std::move(file)](const Value &arg, ElemType elem,
                                  llvm::ArrayRef<int64_t> shape) -> llvm::Expected<const void *> {
    if (!arg.isParam())
      return nullptr;
    auto data = ggufParamData(*file, arg, elem, shape);
    if (!data)
      return data.takeError();
    return data->data();
  };
}
