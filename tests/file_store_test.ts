// The shared store behaviour (store_suite.ts) on the file store.

import { FileLockStore } from "../mod.ts";
import { tempManaDir } from "./_helpers.ts";
import { storeSuite } from "./store_suite.ts";

storeSuite("file store", () => {
  const manaDir = tempManaDir();
  return Promise.resolve({ store: new FileLockStore(manaDir), other: new FileLockStore(manaDir) });
});
