using ZeroFL.Cli.Commands;
using ZeroFL.Federation.Simulation;

namespace ZeroFL.Tests.Cli;

/// <summary>The paper's setups (ZEROFL.md, "Experimental setup of the paper") as presets.</summary>
public sealed class PresetTests
{
    [TestCase("cifar10-resnet18", "cifar10", "resnet18", 100, 10, 700, 0.1, 0.01)]
    [TestCase("speech-resnet18", "speech-commands", "resnet18", 100, 10, 200, 0.01, 0.001)]
    [TestCase("femnist-cnn", "femnist", "femnist-cnn", 3597, 35, 1000, 0.004, 0.001)]
    public void PresetValuesEqualThePapersTable(string name, string dataset, string model, int clients, int perRound, int rounds, double lrStart, double lrEnd)
    {
        var o = new RunOptions();
        Presets.Apply(Presets.Find(name), o, ["--preset", name]);
        Assert.Multiple(() =>
        {
            Assert.That(o.Dataset, Is.EqualTo(dataset));
            Assert.That(o.Model, Is.EqualTo(model));
            Assert.That(o.Clients, Is.EqualTo(clients));
            Assert.That(o.ClientsPerRound, Is.EqualTo(perRound));
            Assert.That(o.Rounds, Is.EqualTo(rounds));
            Assert.That(o.LearningRateStart, Is.EqualTo(lrStart));
            Assert.That(o.LearningRateEnd, Is.EqualTo(lrEnd));
            Assert.That(o.LocalEpochs, Is.EqualTo(1), "1 local epoch");
            Assert.That(o.Strategy, Is.EqualTo("topk-weights"));
        });
    }

    [Test]
    public void FemnistIsPartitionedByWriterAtNinetyFivePercent()
    {
        var o = new RunOptions();
        Presets.Apply(Presets.Find("femnist-cnn"), o, []);
        Assert.That(o.Partition, Is.EqualTo(PartitionScheme.Natural));
        Assert.That(o.Sparsity, Is.EqualTo(0.95));
    }

    [Test]
    public void TheLdaPresetsUseAlphaOneTheNonIidSetting()
    {
        foreach (var name in new[] { "cifar10-resnet18", "speech-resnet18" })
        {
            var o = new RunOptions();
            Presets.Apply(Presets.Find(name), o, []);
            Assert.That((o.Partition, o.Alpha), Is.EqualTo((PartitionScheme.Lda, 1.0)), name);
        }
    }

    [Test]
    public void OptionsGivenOnTheCommandLineOverrideThePreset()
    {
        var o = new RunOptions { Rounds = 3, Sparsity = 0.7, ClientsPerRound = 4 };
        Presets.Apply(Presets.Find("cifar10-resnet18"), o, ["--preset", "cifar10-resnet18", "--rounds", "3", "--sparsity=0.7", "--clients-per-round", "4"]);
        Assert.That((o.Rounds, o.Sparsity, o.ClientsPerRound), Is.EqualTo((3, 0.7, 4)));
        Assert.That(o.Model, Is.EqualTo("resnet18"), "what was not given comes from the preset");
    }

    [Test]
    public void PresetsSendThePapersFp32ValuesUnlessTheCommandLineSaysOtherwise()
    {
        var o = new RunOptions();
        Presets.Apply(Presets.Find("femnist-cnn"), o, ["--preset", "femnist-cnn"]);
        Assert.That(o.UploadValues, Is.EqualTo("fp32"));
        var fp16 = new RunOptions { UploadValues = "fp16" };
        Presets.Apply(Presets.Find("cifar10-resnet18"), fp16, ["--preset", "cifar10-resnet18", "--upload-values", "fp16"]);
        Assert.That(fp16.UploadValues, Is.EqualTo("fp16"));
        Assert.That(ZeroFL.Cli.Commands.RunSetup.BuildOptions(fp16).Uplink.Values, Is.EqualTo(ZeroFL.Federation.Uplink.UploadValues.Fp16));
    }
}
