using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Cluster;

/// <summary>
/// A <see cref="WireUpload"/> as bytes between a worker and the coordinator (little-endian):
/// "ZFLU", format 2, client id, example count (int64), strategy, layer count; per layer its layout
/// tag, a byte of which arrays follow (bit 0 row pointers, 1 32-bit columns, 2 16-bit column words,
/// 3 bitmap, 4 16-bit values), the value width (<see cref="UploadValues"/>), then the fp32 values,
/// those arrays and the 16-bit values, each as a count and its elements (4 bytes, 2 for the 16-bit values). Decoding
/// trusts nothing: a count past the bytes left, a bad header, an unknown strategy or layout tag, or
/// trailing bytes raise
/// <see cref="MalformedUploadException"/>; what decodes is still checked by <see cref="WireValidator"/>.
/// </summary>
public static class UploadCodec
{
    private const uint Magic = 0x554C465A; // "ZFLU"
    private const int Format = 2;

    /// <summary>The bytes of <paramref name="upload"/>.</summary>
    public static byte[] Encode(WireUpload upload)
    {
        long length = 4 + 4 + 4 + 8 + 4 + 4;
        foreach (var layer in upload.Layers)
        {
            length += 2 + ArrayBytes(layer.Values) + ArrayBytes(layer.RowPointers) + ArrayBytes(layer.Columns) + ArrayBytes(layer.Columns16) + ArrayBytes(layer.Bitmap) + 1 + ArrayBytes(layer.Values16);
        }
        if (length > int.MaxValue)
        {
            throw new InvalidOperationException($"an upload of {length} bytes does not fit one buffer");
        }
        var bytes = new byte[length];
        var writer = new Writer(bytes);
        writer.UInt(Magic);
        writer.Int(Format);
        writer.Int(upload.ClientId);
        writer.Long(upload.ExampleCount);
        writer.Int((int)upload.Strategy);
        writer.Int(upload.Layers.Count);
        foreach (var layer in upload.Layers)
        {
            writer.Byte((byte)layer.Encoding);
            writer.Byte((byte)((layer.RowPointers is null ? 0 : 1) | (layer.Columns is null ? 0 : 2) | (layer.Columns16 is null ? 0 : 4) | (layer.Bitmap is null ? 0 : 8) | (layer.Values16 is null ? 0 : 16)));
            writer.Byte((byte)layer.ValueFormat);
            writer.Array<float>(layer.Values);
            writer.Array(layer.RowPointers);
            writer.Array(layer.Columns);
            writer.Array(layer.Columns16);
            writer.Array(layer.Bitmap);
            writer.Array(layer.Values16);
        }
        return bytes;
    }

    /// <summary>The upload in <paramref name="bytes"/>; <see cref="MalformedUploadException"/> when they do not make one.</summary>
    public static WireUpload Decode(ReadOnlySpan<byte> bytes)
    {
        var reader = new Reader(bytes);
        if (reader.UInt() != Magic)
        {
            throw new MalformedUploadException("undecodable upload: not a ZeroFL upload");
        }
        int format = reader.Int();
        if (format != Format)
        {
            throw new MalformedUploadException($"undecodable upload: format {format}, expected {Format}");
        }
        int clientId = reader.Int();
        long examples = reader.Long();
        var strategy = (UplinkStrategy)reader.Int();
        if (!Enum.IsDefined(strategy))
        {
            throw new MalformedUploadException($"undecodable upload: unknown strategy {(int)strategy}");
        }
        int count = reader.Int();
        if (count < 0 || count > reader.Remaining / 27)
        {
            throw new MalformedUploadException($"undecodable upload: {count} layers in {reader.Remaining} bytes");
        }
        var layers = new WireLayer[count];
        for (int l = 0; l < count; l++)
        {
            var encoding = (LayerEncoding)reader.Byte();
            int present = reader.Byte();
            var width = (UploadValues)reader.Byte();
            if (!Enum.IsDefined(encoding) || present > 31 || !Enum.IsDefined(width))
            {
                throw new MalformedUploadException($"undecodable upload: layer {l}: layout tag {(int)encoding}, array flags {present}, value width {(int)width}");
            }
            var values = reader.Array<float>();
            var rows = reader.Array<int>();
            var columns = reader.Array<int>();
            var columns16 = reader.Array<int>();
            var bitmap = reader.Array<int>();
            var values16 = reader.Array<ushort>();
            layers[l] = new WireLayer(values, (present & 1) != 0 ? rows : null, (present & 2) != 0 ? columns : null, (present & 4) != 0 ? columns16 : null, (present & 8) != 0 ? bitmap : null)
            {
                Encoding = encoding,
                ValueFormat = width,
                Values16 = (present & 16) != 0 ? values16 : null,
            };
        }
        if (reader.Remaining != 0)
        {
            throw new MalformedUploadException($"undecodable upload: {reader.Remaining} bytes after the last layer");
        }
        return new WireUpload(clientId, examples, strategy, layers);
    }

    private static long ArrayBytes<T>(T[]? array)
        where T : unmanaged => 4 + (long)Unsafe.SizeOf<T>() * (array?.Length ?? 0);

    private ref struct Writer(Span<byte> bytes)
    {
        private readonly Span<byte> bytes = bytes;
        private int position;

        public void Byte(byte value) => bytes[position++] = value;

        public void UInt(uint value)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes[position..], value);
            position += 4;
        }

        public void Int(int value)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes[position..], value);
            position += 4;
        }

        public void Long(long value)
        {
            BinaryPrimitives.WriteInt64LittleEndian(bytes[position..], value);
            position += 8;
        }

        /// <summary>A count and the elements (an absent array is written empty; the flags byte tells which are there).</summary>
        public void Array<T>(T[]? array)
            where T : unmanaged
        {
            var span = array is null ? ReadOnlySpan<T>.Empty : array;
            Int(span.Length);
            var raw = MemoryMarshal.AsBytes(span);
            if (!BitConverter.IsLittleEndian)
            {
                throw new PlatformNotSupportedException("uploads are encoded on little-endian hosts only");
            }
            raw.CopyTo(bytes[position..]);
            position += raw.Length;
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> bytes = bytes;
        private int position;

        public readonly int Remaining => bytes.Length - position;

        public byte Byte()
        {
            Need(1);
            return bytes[position++];
        }

        public uint UInt()
        {
            Need(4);
            uint value = BinaryPrimitives.ReadUInt32LittleEndian(bytes[position..]);
            position += 4;
            return value;
        }

        public int Int()
        {
            Need(4);
            int value = BinaryPrimitives.ReadInt32LittleEndian(bytes[position..]);
            position += 4;
            return value;
        }

        public long Long()
        {
            Need(8);
            long value = BinaryPrimitives.ReadInt64LittleEndian(bytes[position..]);
            position += 8;
            return value;
        }

        public T[] Array<T>()
            where T : unmanaged
        {
            int count = Int();
            if (count < 0 || count > Remaining / Unsafe.SizeOf<T>())
            {
                throw new MalformedUploadException($"undecodable upload: an array of {count} elements in {Remaining} bytes");
            }
            var array = new T[count];
            bytes.Slice(position, Unsafe.SizeOf<T>() * count).CopyTo(MemoryMarshal.AsBytes(array.AsSpan()));
            position += Unsafe.SizeOf<T>() * count;
            return array;
        }

        private readonly void Need(int count)
        {
            if (Remaining < count)
            {
                throw new MalformedUploadException($"undecodable upload: truncated at byte {position}");
            }
        }
    }
}
