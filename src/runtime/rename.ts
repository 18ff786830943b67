// `ufs rename OLD NEW`: a new name in the container's record, claimed under the store lock as
// `create --name` claims one, so two renames (or a rename and a create) cannot both take it.
import { UfsError } from '../common/errors.js';
import type { Store } from '../store/index.js';
import { findRecord, listRecords, readRecord, writeRecord } from './container.js';
import { validName } from './names.js';

export async function renameContainer(store: Store, ref: string, newName: string): Promise<void> {
  const name = newName.replace(/^\//, '');
  if (!validName(name)) throw new UfsError(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const dir = store.containersDir();
  await store.withLock(async () => {
    const rec = findRecord(dir, ref);
    if (rec.Name === name) throw new UfsError('Error when allocating new name: Renaming a container with the same name as its current name');
    const other = listRecords(dir).find((r) => r.Name === name);
    if (other) {
      throw new UfsError(`Error when allocating new name: Conflict. The container name "/${name}" is already in use by container "${other.Id}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    // the latest record (its monitor may have written its state meanwhile), renamed
    const now = readRecord(dir, rec.Id);
    if (!now) throw new UfsError(`No such container: ${ref}`);
    writeRecord(dir, { ...now, Name: name });
  });
}
