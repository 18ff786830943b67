// The pure helpers of src/fuse: mountinfo parsing and the mount option list.
import test from 'ava';
import { parseMountInfo } from '../src/fuse/mountinfo.js';
import { fsnameOption, mountOptions } from '../src/fuse/options.js';

test('mountinfo: mount point and source unescaped, fstype after the separator', (t) => {
  const text = [
    '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
    '47 27 0:40 / /tmp/with\\040space\\011tab\\134back rw,nosuid shared:1 master:2 - fuse.ufs ufs:a\\040b rw,user_id=0',
    'garbage line',
    '',
  ].join('\n');
  t.deepEqual(parseMountInfo(text), [
    { mountpoint: '/', fstype: 'ext4', source: '/dev/vda' },
    { mountpoint: '/tmp/with space\ttab\\back', fstype: 'fuse.ufs', source: 'ufs:a b' },
  ]);
});

test('mount options: cached, big, ours; read-only without upper', (t) => {
  const rw = mountOptions({ upper: '/u', fsname: 'ufs:x' });
  for (const o of ['use_ino', 'readdir_ino', 'big_writes', 'max_write=131072', 'max_read=131072', 'kernel_cache',
    'allow_other', 'default_permissions', 'subtype=ufs', 'fsname=ufs:x']) {
    t.true(rw.includes(o), o);
  }
  for (const o of ['entry_timeout', 'attr_timeout', 'negative_timeout']) {
    const v = rw.find((x) => x.startsWith(`${o}=`));
    t.true(Number(v?.split('=')[1]) >= 3600, o);
  }
  t.false(rw.includes('ro'));
  t.true(mountOptions({ fsname: 'ufs:x' }).includes('ro'));
});

test('fsname: short, prefixed, and safe inside a comma-separated option list', (t) => {
  t.is(fsnameOption('abc'), 'ufs:abc');
  t.is(fsnameOption('ufs:abc'), 'ufs:abc');
  t.is(fsnameOption('a,b c=d'), 'ufs:a_b_c_d');
  t.true(fsnameOption('x'.repeat(200)).length <= 68);
});
