#include "output/reorder_buffer.h"

#include <utility>

ReorderBuffer::Slot& ReorderBuffer::At(uint64_t seq) {
  size_t i = seq - head_seq_;
  if (i >= slots_.size()) slots_.resize(i + 1);
  ++held_;
  return slots_[i];
}

void ReorderBuffer::Skip(uint64_t seq) { At(seq).state = Slot::kSkip; }

void ReorderBuffer::Reject(RecordError error) {
  Slot& slot = At(error.seq);
  slot.state = Slot::kError;
  slot.error = std::make_unique<RecordError>(std::move(error));
}

void ReorderBuffer::Embed(std::shared_ptr<const BatchResult> result) {
  const std::vector<Record>& records = result->batch.records;
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].parts > 1) continue;
    Slot& slot = At(records[i].seq);
    slot.state = Slot::kEmbedded;
    slot.result = result;
    slot.index = i;
  }
}

size_t ReorderBuffer::Release(
    const std::function<bool(const Released&)>& sink) {
  size_t released = 0;
  while (!slots_.empty() && slots_.front().state != Slot::kOpen) {
    Slot& slot = slots_.front();
    Released item;
    if (slot.state == Slot::kError) {
      item.error = slot.error.get();
    } else if (slot.state == Slot::kEmbedded) {
      const Embeddings& e = slot.result->embeddings;
      item.record = &slot.result->batch.records[slot.index];
      item.dims = e.dims;
      item.vector = e.values.data() + slot.index * e.dims;
      item.owner = slot.result;
    }
    if (!sink(item)) break;
    slots_.pop_front();
    ++head_seq_;
    --held_;
    ++released;
  }
  return released;
}
