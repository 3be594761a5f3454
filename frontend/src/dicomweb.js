// DICOMweb metadata (DICOM JSON model, PS3.18 F.2) for the `wadors:` image loader.

const TAG = {
  SOPInstanceUID: '00080018',
  SeriesInstanceUID: '0020000E',
  InstanceNumber: '00200013',
  NumberOfFrames: '00280008',
  FrameTime: '00181063',
  FrameTimeVector: '00181065',
  CineRate: '00180040',
  RecommendedDisplayFrameRate: '00082144',
  PhotometricInterpretation: '00280004',
};

// Palette colour LUT data: the loader needs numeric Value arrays (InlineBinary / BulkDataURI
// fail, see stack-notes), so they are converted here before metaDataManager.add.
const PALETTE_DATA_TAGS = ['00281201', '00281202', '00281203'];

export class ViewerLoadError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = 'ViewerLoadError';
    if (cause !== undefined) this.cause = cause;
  }
}

export function first(ds, tag) {
  const el = ds?.[tag];
  if (!el || !Array.isArray(el.Value) || el.Value.length === 0) return undefined;
  return el.Value[0];
}

export function absoluteRoot(root) {
  if (!root) throw new ViewerLoadError('dicomwebRoot is required (e.g. "/dicomweb")');
  const url = new URL(root, document.baseURI).href;
  return url.replace(/\/+$/, '');
}

/** GET a DICOM JSON document; errors name the URL and the HTTP status. */
export async function fetchDicomJson(url, { timeoutMs = 15000, signal } = {}) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error('timeout')), timeoutMs);
  const onAbort = () => ctrl.abort(signal.reason);
  signal?.addEventListener('abort', onAbort);
  let resp;
  try {
    resp = await fetch(url, {
      headers: { Accept: 'application/dicom+json, application/json;q=0.9' },
      credentials: 'same-origin',
      signal: ctrl.signal,
    });
  } catch (err) {
    if (ctrl.signal.aborted && !signal?.aborted) {
      throw new ViewerLoadError(`DICOM metadata request timed out after ${timeoutMs} ms: ${url}`, err);
    }
    throw new ViewerLoadError(`DICOM metadata request failed (${err?.message || err}): ${url}`, err);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  if (!resp.ok) {
    let detail = '';
    try {
      detail = (await resp.text()).slice(0, 200).trim();
    } catch {
      /* body unreadable: status is enough */
    }
    throw new ViewerLoadError(
      `DICOM metadata request failed: HTTP ${resp.status} ${resp.statusText || ''} for ${url}${detail ? ` — ${detail}` : ''}`.trim(),
    );
  }
  let body;
  try {
    body = await resp.json();
  } catch (err) {
    throw new ViewerLoadError(`DICOM metadata is not valid JSON: ${url}`, err);
  }
  if (!Array.isArray(body)) {
    throw new ViewerLoadError(`DICOM metadata must be a JSON array of datasets: ${url}`);
  }
  return body;
}

export function seriesMetadataUrl(root, studyUID, seriesUID) {
  return `${root}/studies/${studyUID}/series/${seriesUID}/metadata`;
}

export function instanceMetadataUrl(root, studyUID, seriesUID, sopUID) {
  return `${root}/studies/${studyUID}/series/${seriesUID}/instances/${sopUID}/metadata`;
}

export function studyMetadataUrl(root, studyUID) {
  return `${root}/studies/${studyUID}/metadata`;
}

export function frameImageId(root, studyUID, seriesUID, sopUID, frameNumber1) {
  return `wadors:${root}/studies/${studyUID}/series/${seriesUID}/instances/${sopUID}/frames/${frameNumber1}`;
}

/** Frame time in ms from the dataset, and where it came from. */
export function frameTimeFromMetadata(ds) {
  const ft = Number(first(ds, TAG.FrameTime));
  if (Number.isFinite(ft) && ft > 0) return { frameTimeMs: ft, source: 'FrameTime' };
  const vec = ds?.[TAG.FrameTimeVector]?.Value?.map(Number).filter((v) => Number.isFinite(v) && v > 0);
  if (vec && vec.length) {
    return { frameTimeMs: vec.reduce((s, v) => s + v, 0) / vec.length, source: 'FrameTimeVector' };
  }
  const cine = Number(first(ds, TAG.CineRate));
  if (Number.isFinite(cine) && cine > 0) return { frameTimeMs: 1000 / cine, source: 'CineRate' };
  const rec = Number(first(ds, TAG.RecommendedDisplayFrameRate));
  if (Number.isFinite(rec) && rec > 0) return { frameTimeMs: 1000 / rec, source: 'RecommendedDisplayFrameRate' };
  return { frameTimeMs: 1000 / 30, source: 'default (30 fps: no Frame Time in the file)' };
}

/** One entry per instance in the metadata, ordered by Instance Number. */
export function instancesFromMetadata(datasets) {
  const out = datasets
    .filter((ds) => first(ds, TAG.SOPInstanceUID))
    .map((ds) => {
      const { frameTimeMs, source } = frameTimeFromMetadata(ds);
      return {
        sopInstanceUID: first(ds, TAG.SOPInstanceUID),
        seriesInstanceUID: first(ds, TAG.SeriesInstanceUID),
        instanceNumber: Number(first(ds, TAG.InstanceNumber) ?? 0),
        numberOfFrames: Number(first(ds, TAG.NumberOfFrames) ?? 1) || 1,
        frameTimeMs,
        frameTimeSource: source,
      };
    });
  out.sort((x, y) => x.instanceNumber - y.instanceNumber);
  return out;
}

export function indexBySop(datasets) {
  const map = new Map();
  for (const ds of datasets) {
    const sop = first(ds, TAG.SOPInstanceUID);
    if (sop) map.set(sop, ds);
  }
  return map;
}

function decodeBase64Words(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const words = new Uint16Array(bytes.buffer, 0, Math.floor(bytes.length / 2));
  return Array.from(words);
}

/**
 * Make the dataset loadable by the wadors loader: palette LUT data as numeric Value arrays.
 * BulkDataURI LUTs are fetched (same-origin) and decoded as little-endian 16-bit words.
 */
export async function prepareForLoader(ds) {
  if (first(ds, TAG.PhotometricInterpretation) !== 'PALETTE COLOR') return ds;
  const copy = { ...ds };
  for (const tag of PALETTE_DATA_TAGS) {
    const el = copy[tag];
    if (!el || Array.isArray(el.Value)) continue;
    if (el.InlineBinary) {
      copy[tag] = { vr: el.vr || 'OW', Value: decodeBase64Words(el.InlineBinary) };
    } else if (el.BulkDataURI) {
      const resp = await fetch(el.BulkDataURI, {
        headers: { Accept: 'application/octet-stream, multipart/related; type="application/octet-stream"' },
        credentials: 'same-origin',
      });
      if (!resp.ok) {
        throw new ViewerLoadError(`Palette LUT bulk data request failed: HTTP ${resp.status} for ${el.BulkDataURI}`);
      }
      const buf = new Uint8Array(await resp.arrayBuffer());
      const bytes = stripMultipart(buf, resp.headers.get('content-type') || '');
      const words = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + (bytes.length & ~1)));
      copy[tag] = { vr: el.vr || 'OW', Value: Array.from(words) };
    }
  }
  return copy;
}

/** Body of the first part of a multipart/related response (or the bytes as they are). */
function stripMultipart(bytes, contentType) {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!/multipart\//i.test(contentType) || !m) return bytes;
  const text = new TextDecoder('latin1').decode(bytes);
  const start = text.indexOf('\r\n\r\n');
  const end = text.indexOf(`\r\n--${m[1]}`, start + 4);
  if (start < 0) return bytes;
  return bytes.subarray(start + 4, end > 0 ? end : bytes.length);
}
