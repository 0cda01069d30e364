// For a child process run as root that must meet a mode as another user meets it: it becomes
// that user only once its code and the native addon are loaded, so the clone it runs from
// need not be one that user can read.
import { addon } from '../../src/wal/addon.js';

export function becomeUser(uid: number): void {
  addon();
  process.setgroups!([]);
  process.setgid!(uid);
  process.setuid!(uid);
}
