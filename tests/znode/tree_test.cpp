#include <gtest/gtest.h>

#include "coord/znode/tree.h"

namespace coord::znode {
namespace {

TEST(Tree, FreshTreeHasBuiltins) {
  DataTree t;
  EXPECT_EQ(t.node_count(), 4u);
}

}  // namespace
}  // namespace coord::znode
