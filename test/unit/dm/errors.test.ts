import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DevmapperError } from '../../../src/errors.js';
import { DeviceBusyError, DeviceExistsError, DeviceNotFoundError, describeIdent } from '../../../src/dm/errors.js';

test('domain errors carry code, device and cause', () => {
  const cause = Object.assign(new Error('ioctl DM_DEV_STATUS failed'), { code: 'ENXIO' });
  const nf = new DeviceNotFoundError({ name: 'foo' }, { cause });
  assert.instance(nf, DevmapperError);
  assert.is(nf.name, 'DeviceNotFoundError');
  assert.is(nf.code, 'EDEVICENOTFOUND');
  assert.is(nf.cause, cause);
  assert.is(nf.message, "device-mapper device 'foo' does not exist");
  const ex = new DeviceExistsError({ uuid: 'U' });
  assert.is(ex.code, 'EDMDEVICEEXISTS');
  assert.is(ex.message, "device-mapper device uuid 'U' cannot be created: the name, uuid or minor is already in use");
  const busy = new DeviceBusyError({ dev: { major: 253, minor: 4 } }, 25, { cause });
  assert.is(busy.code, 'EDEVICEBUSY');
  assert.is(busy.attempts, 25);
  assert.is(busy.message, 'device-mapper device 253:4 is still in use after 25 remove attempt(s)');
});

test('describeIdent prefers uuid, then name, then dev', () => {
  assert.is(describeIdent({ name: 'n', uuid: 'u' }), "uuid 'u'");
  assert.is(describeIdent({}), '(unnamed device)');
});

test.run();
