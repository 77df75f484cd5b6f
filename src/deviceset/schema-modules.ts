// SPDX-License-Identifier: MIT
// Which schemas the layer generates (schemas.generated.ts), for `npm run validators` and the
// staleness test. Loads TypeBox: never imported at run time.
import * as S from './record-schemas.js';
import { schemaModuleText } from './schema-codegen.js';

/** The text schemas.generated.ts must hold. */
export function deviceSetSchemaModule(): string {
  return schemaModuleText({
    source: './record-schemas.js',
    command: 'npm run validators',
    schemas: {
      DeviceState: S.DeviceState,
      DeviceRecord: S.DeviceRecord,
      DeviceSetRecord: S.DeviceSetRecord,
      TransactionOp: S.TransactionOp,
      TransactionRecord: S.TransactionRecord,
      DeviceSetOptions: S.DeviceSetOptions,
    },
    checked: ['DeviceRecord', 'DeviceSetRecord', 'TransactionRecord', 'DeviceSetOptions'],
  });
}
