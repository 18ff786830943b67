// The pure helpers of src/fuse: mountinfo parsing, the mount option list, fstab options.
import test from 'ava';
import { parseMountInfo } from '../src/fuse/mountinfo.js';
import { parseOverlayOptions } from '../src/fuse/fstab.js';
import { fsnameOption, lowLevelMountOptions } from '../src/fuse/options.js';

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

test('mount options: ours, for every user, kernel permission checks; read-only without upper', (t) => {
  const rw = lowLevelMountOptions({ upper: '/u', fsname: 'ufs:x' });
  for (const o of ['allow_other', 'default_permissions', 'subtype=ufs', 'fsname=ufs:x']) t.true(rw.includes(o), o);
  t.false(rw.includes('ro'));
  t.true(lowLevelMountOptions({ fsname: 'ufs:x' }).includes('ro'));
});

test('mount -t fuse.ufs options: overlayfs form, escapes, redirects on by default, typos refused', (t) => {
  const m = parseOverlayOptions('ufs', '/mnt', 'rw,lowerdir=/l1:/a\\:b:/l3,upperdir=/u,workdir=/w,index=on');
  t.deepEqual(m.spec, { lowers: ['/l1', '/a:b', '/l3'], upper: '/u', mountpoint: '/mnt', fsname: 'ufs', redirectDir: true });
  t.is(m.workdir, '/w');
  t.false(parseOverlayOptions('ufs', '/mnt', 'lowerdir=/l,upperdir=/u,workdir=/w,redirect_dir=off').spec.redirectDir === true);
  t.deepEqual(parseOverlayOptions('none', '/mnt', 'lowerdir=/a:/b').spec, { lowers: ['/a', '/b'], mountpoint: '/mnt', redirectDir: true });
  t.is(parseOverlayOptions('ufs', '/mnt', 'ro,lowerdir=/a,upperdir=/u,workdir=/w').spec.upper, undefined);
  t.throws(() => parseOverlayOptions('ufs', '/mnt', 'lowerdir=/a,uperdir=/u'), { message: /unknown mount option uperdir=\/u/ });
  t.throws(() => parseOverlayOptions('ufs', '/mnt', 'upperdir=/u,workdir=/w'), { message: /lowerdir= is required/ });
  t.throws(() => parseOverlayOptions('ufs', '/mnt', 'lowerdir=/a,upperdir=/u'), { message: /needs workdir=/ });
});

test('fsname: short, prefixed, and safe inside a comma-separated option list', (t) => {
  t.is(fsnameOption('abc'), 'ufs:abc');
  t.is(fsnameOption('ufs:abc'), 'ufs:abc');
  t.is(fsnameOption('a,b c=d'), 'ufs:a_b_c_d');
  t.true(fsnameOption('x'.repeat(200)).length <= 68);
});
