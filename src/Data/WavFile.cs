using System.Buffers.Binary;

namespace ZeroFL.Data;

/// <summary>
/// Reads and writes RIFF/WAVE files of 16-bit PCM audio, the format of the Speech Commands clips.
/// The reader walks the chunk list properly: chunks it does not need (LIST, fact, cue, ...) are
/// skipped, and an odd-sized chunk is followed by one pad byte as RIFF requires.
/// </summary>
public static class WavFile
{
    /// <summary>The only sample rate <see cref="ReadSpeechClip"/> accepts.</summary>
    public const int SpeechSampleRate = 16000;

    /// <summary>
    /// Reads a Speech Commands clip: format 1 (PCM), 16-bit, mono, 16000 Hz. Returns the samples
    /// scaled to [-1, 1) (a 16-bit value v becomes v / 32768). Throws
    /// <see cref="DataFormatException"/>, naming the file and the problem, for anything else: not
    /// RIFF/WAVE, a missing or short fmt chunk, another encoding, sample size, channel count or
    /// sample rate, a missing data chunk, or a data chunk that runs past the end of the file.
    /// </summary>
    public static float[] ReadSpeechClip(string path)
    {
        var (samples, sampleRate) = Read(path);
        if (sampleRate != SpeechSampleRate)
        {
            throw new DataFormatException(path, $"sample rate {sampleRate} Hz; Speech Commands clips are {SpeechSampleRate} Hz");
        }
        return samples;
    }

    /// <summary>
    /// Reads a 16-bit mono PCM WAV file at any sample rate: the samples scaled to [-1, 1) and the
    /// sample rate. Throws <see cref="DataFormatException"/> as <see cref="ReadSpeechClip"/> does,
    /// except for the sample rate.
    /// </summary>
    public static (float[] Samples, int SampleRate) Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"cannot be read ({e.Message})", e);
        }
        return Parse(path, bytes);
    }

    /// <summary>
    /// Parses WAV file contents held in memory; <paramref name="path"/> only names the source in
    /// error messages. The rules are those of <see cref="Read"/>.
    /// </summary>
    public static (float[] Samples, int SampleRate) Parse(string path, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 12 || !bytes[..4].SequenceEqual("RIFF"u8) || !bytes.Slice(8, 4).SequenceEqual("WAVE"u8))
        {
            throw new DataFormatException(path, "not a RIFF/WAVE file");
        }
        int sampleRate = 0;
        bool haveFormat = false;
        int position = 12;
        while (position + 8 <= bytes.Length)
        {
            var id = bytes.Slice(position, 4);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(position + 4, 4));
            int body = position + 8;
            long available = bytes.Length - body;
            if (id.SequenceEqual("fmt "u8))
            {
                if (size < 16 || available < 16)
                {
                    throw new DataFormatException(path, $"fmt chunk of {Math.Min(size, available)} bytes is too short (needs 16)");
                }
                var fmt = bytes.Slice(body, 16);
                int format = BinaryPrimitives.ReadUInt16LittleEndian(fmt);
                int channels = BinaryPrimitives.ReadUInt16LittleEndian(fmt[2..]);
                sampleRate = BinaryPrimitives.ReadInt32LittleEndian(fmt[4..]);
                int bits = BinaryPrimitives.ReadUInt16LittleEndian(fmt[14..]);
                if (format == 0xFFFE && size >= 40 && available >= 40)
                {
                    // WAVE_FORMAT_EXTENSIBLE: the real format tag opens the sub-format GUID.
                    format = BinaryPrimitives.ReadUInt16LittleEndian(bytes.Slice(body + 24, 2));
                }
                if (format != 1)
                {
                    throw new DataFormatException(path, $"audio format {format}; only PCM (format 1) is supported");
                }
                if (bits != 16)
                {
                    throw new DataFormatException(path, $"{bits}-bit samples; Speech Commands clips are 16-bit");
                }
                if (channels != 1)
                {
                    throw new DataFormatException(path, $"{channels} channels; Speech Commands clips are mono");
                }
                if (sampleRate <= 0)
                {
                    throw new DataFormatException(path, $"sample rate {sampleRate} Hz is invalid");
                }
                haveFormat = true;
            }
            else if (id.SequenceEqual("data"u8))
            {
                if (!haveFormat)
                {
                    throw new DataFormatException(path, "data chunk before any fmt chunk");
                }
                if (size > available)
                {
                    throw new DataFormatException(path, $"truncated: data chunk declares {size} bytes but only {available} follow");
                }
                if (size % 2 != 0)
                {
                    throw new DataFormatException(path, $"data chunk of {size} bytes is not a whole number of 16-bit samples");
                }
                var data = bytes.Slice(body, (int)size);
                var samples = new float[size / 2];
                for (int i = 0; i < samples.Length; i++)
                {
                    samples[i] = BinaryPrimitives.ReadInt16LittleEndian(data.Slice(2 * i, 2)) / 32768f;
                }
                return (samples, sampleRate);
            }
            long next = (long)body + size + (size & 1);
            if (next > bytes.Length)
            {
                break;
            }
            position = (int)next;
        }
        throw new DataFormatException(path, haveFormat ? "no data chunk" : "no fmt chunk");
    }

    /// <summary>
    /// Writes <paramref name="samples"/> as a 16-bit mono PCM WAV file at
    /// <paramref name="sampleRate"/> Hz. Samples are clipped to [-1, 1] and rounded to the nearest
    /// 16-bit value (x * 32768, limited to -32768..32767), so reading the file back gives each
    /// sample within 1/32768 of the written value.
    /// </summary>
    public static void Write(string path, float[] samples, int sampleRate)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sampleRate);
        File.WriteAllBytes(path, Encode(samples, sampleRate));
    }

    /// <summary>The bytes of the WAV file that <see cref="Write"/> writes.</summary>
    public static byte[] Encode(ReadOnlySpan<float> samples, int sampleRate)
    {
        int dataBytes = checked(samples.Length * 2);
        var bytes = new byte[44 + dataBytes];
        var span = bytes.AsSpan();
        "RIFF"u8.CopyTo(span);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], 36 + dataBytes);
        "WAVE"u8.CopyTo(span[8..]);
        "fmt "u8.CopyTo(span[12..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[16..], 16);
        BinaryPrimitives.WriteInt16LittleEndian(span[20..], 1);
        BinaryPrimitives.WriteInt16LittleEndian(span[22..], 1);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], sampleRate);
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], sampleRate * 2);
        BinaryPrimitives.WriteInt16LittleEndian(span[32..], 2);
        BinaryPrimitives.WriteInt16LittleEndian(span[34..], 16);
        "data"u8.CopyTo(span[36..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[40..], dataBytes);
        for (int i = 0; i < samples.Length; i++)
        {
            float x = float.IsNaN(samples[i]) ? 0f : samples[i];
            int v = (int)MathF.Round(x * 32768f);
            BinaryPrimitives.WriteInt16LittleEndian(span[(44 + 2 * i)..], (short)Math.Clamp(v, short.MinValue, short.MaxValue));
        }
        return bytes;
    }
}
